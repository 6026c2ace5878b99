/**
 * The run service: every transition of the contract over D1.
 *
 * Each transition reads the run, asks the pure core (`decide`) what the event
 * does, then makes one conditional write — a compare-and-set on the `status`
 * and `attempt` it decided from — batched atomically with the audit insert
 * guarded by `changes() = 1`. The winner alone changes the run and writes the
 * event; a loser re-reads and gets a typed answer (fenced, terminal,
 * duplicate). SQL is written out here rather than built by drizzle because the
 * guarded insert relies on `changes()` inside one batch, and D1's `meta` (rows
 * read and written) is wanted by the cost figures.
 */
import {
  actorName,
  DEFAULT_SETTINGS,
  decide,
  errorMessage,
  explainReason,
  initialState,
  retryDelayMs,
  sanitizeMessage,
  storedDeadline,
  truncateText,
  EMPTY_PROGRESS,
  type ExecutionReasonCode,
  type FinalOutcome,
  type LifecycleEvent,
  type LifecyclePolicy,
  type LifecycleSettings,
  type Progress,
  type Refusal,
  type Transition,
} from "../lifecycle";
import { prepared } from "../db/d1";
import { announceDeliveries, endpointIdsOf, outboxInsertFor } from "../webhooks/outbox";
import { AUDIT_COLUMNS, insertAuditEvent, insertAuditEventIfWon, type Actor } from "./audit";
import { countFailureIfWon } from "./failure-counts";
import { newEventId, newRunId } from "./ids";
import { runInWorkspace } from "./queries";
import { recordToRow, RUN_COLUMNS, rowToRecord, stateOf, type Diagnostics, type RunRecord, type RunRow } from "./records";

export type RunAnswer =
  | { ok: true; run: RunRecord; transition: Transition }
  | { ok: false; refusal: Refusal | "not_found"; run: RunRecord | null };

export type HeartbeatAnswer =
  | { ok: true; flushed: boolean }
  | { ok: false; refusal: Refusal | "not_found"; run: RunRecord | null };

export interface CreateRunInput {
  workspaceId: string;
  type: string;
  input: unknown;
  idempotencyKey?: string | null;
  initiator: Actor;
  /** The initiator's id (a user or token id), kept in the `run.queued` event's metadata; the actor names it. */
  actorId?: string;
  /**
   * Retry as a new run (contract section 7): the original's id, a run of the
   * same workspace (the caller has read it there). The original
   * gets a `run.retried` event naming the new run, in the same batch as the
   * insert, so it exists exactly when the new run does.
   */
  retryOf?: string | null;
}

export type CreateAnswer =
  /** `created` is false when the idempotency key matched an earlier run with the same request. */
  | { ok: true; run: RunRecord; created: boolean }
  /** The key was used before for a different type or input. */
  | { ok: false; conflict: RunRecord };

export interface RunServiceOptions {
  /** The policy in force for a type (a fallback for removed types). */
  policyFor: (type: string) => LifecyclePolicy;
  settings?: LifecycleSettings;
  clock?: () => number;
  /** Where a terminal transition announces its webhook deliveries (src/webhooks); without it the cron re-drives them. */
  webhooks?: Queue<unknown>;
}

/** Evidence a detector attaches to a reconciliation (shown in diagnostics). */
export type Evidence = Record<string, unknown>;

/** A loser re-reads and re-decides; each retry means another writer made a transition, and a run has few. */
const MAX_CAS_ROUNDS = 8;

export class ContentionError extends Error {
  override name = "ContentionError";
}

interface Patch {
  progress?: Progress;
  /** The handler's output as JSON text (already size-checked); written once, on the result. */
  output?: string | null;
  failureMessage?: string | null;
  diagnostics: Diagnostics;
  lastHeartbeatAt?: number;
  startedAt?: number;
  completedAt?: number;
  deadlineAt: number | null;
  metadata: Record<string, unknown>;
  /** An operator's cancel request, recorded on the run (contract section 7). */
  cancelRequest?: { at: number; by: Actor };
  /** Events the same write emits before the transition's own (a queued run's `run.cancel_requested`). */
  precedingEvents?: Array<{ action: "run.cancel_requested"; metadata: Record<string, unknown> }>;
  /** For a transition that ends a run `cancelled`: how its attempt ended, when the event alone does not say. */
  stopped?: "grace_expired";
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function withAttempt(d: Diagnostics, attempt: number, update: Partial<Diagnostics["attempts"][number]>): Diagnostics {
  const attempts = d.attempts.map((a) => (a.attempt === attempt ? { ...a, ...update } : a));
  return { ...d, attempts };
}

export class RunService {
  private readonly settings: LifecycleSettings;
  private readonly clock: () => number;

  constructor(
    private readonly db: D1Database,
    private readonly options: RunServiceOptions,
  ) {
    this.settings = options.settings ?? DEFAULT_SETTINGS;
    this.clock = options.clock ?? Date.now;
  }

  private policy(type: string): LifecyclePolicy {
    return this.options.policyFor(type);
  }

  /** A run by id with no workspace scoping: for the machinery (consumer, tracker, sweep), never for users. */
  async getById(runId: string): Promise<RunRecord | null> {
    const row = await this.db.prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE id = ?`).bind(runId).first<RunRow>();
    return row ? rowToRecord(row) : null;
  }

  /** A run as a member of `workspaceId` sees it: another workspace's run does not exist. */
  get(workspaceId: string, runId: string): Promise<RunRecord | null> {
    return runInWorkspace(this.db, workspaceId, runId);
  }

  /** The run an earlier create with this Idempotency-Key made in `workspaceId`, if any. */
  async getByIdempotencyKey(workspaceId: string, idempotencyKey: string | null): Promise<RunRecord | null> {
    const row = await this.db
      .prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE workspace_id = ? AND idempotency_key = ?`)
      .bind(workspaceId, idempotencyKey)
      .first<RunRow>();
    return row ? rowToRecord(row) : null;
  }

  /**
   * Accept a run (queued, attempt 0). With an idempotency key, a second
   * request returns the first run; the insert and its `run.queued` event are
   * one batch, so a duplicate request never writes a second event.
   */
  async create(req: CreateRunInput): Promise<CreateAnswer> {
    const now = this.clock();
    const policy = this.policy(req.type);
    const state = initialState(policy.maxAttempts);
    const id = newRunId(now);
    const inputJson = JSON.stringify(req.input ?? null);
    const diagnostics: Diagnostics = { attempts: [], thresholds: thresholdsOf(policy, this.settings) };
    const deadline = storedDeadline({ status: "queued", queuedSince: now, lastFlushedHeartbeatAt: null }, policy);
    const [inserted] = await this.db.batch<RunRow>([
      this.db
        .prepare(
          `INSERT INTO operation_runs (${RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, NULL, ?, NULL, ?, ?, ?, ?, NULL, NULL, NULL)
           ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
           RETURNING ${RUN_COLUMNS}`,
        )
        .bind(
          id,
          req.workspaceId,
          req.type,
          state.status,
          state.outcome,
          state.attempt,
          state.maxAttempts,
          inputJson,
          JSON.stringify(EMPTY_PROGRESS),
          now,
          deadline,
          JSON.stringify(diagnostics),
          req.idempotencyKey ?? null,
          req.initiator,
          now,
          req.retryOf ?? null,
        ),
      insertAuditEventIfWon(this.db, {
        workspaceId: req.workspaceId,
        actor: req.initiator,
        action: "run.queued",
        subjectType: "run",
        subjectId: id,
        metadata: {
          type: req.type,
          maxAttempts: state.maxAttempts,
          idempotencyKey: req.idempotencyKey ?? null,
          ...(req.actorId !== undefined ? { actorId: req.actorId } : {}),
          ...(req.retryOf ? { retryOf: req.retryOf } : {}),
        },
        createdAt: now,
      }),
      // Guarded by the run.queued insert just before it: one row exactly when the run was inserted.
      ...(req.retryOf ? [retriedEvent(this.db, { ...req, retryOf: req.retryOf }, id, now)] : []),
    ]);
    // The inserted row comes back with the insert (RETURNING): no second read.
    const row = inserted?.results[0];
    if (row) return { ok: true, run: rowToRecord(row), created: true };
    const run = await this.getByIdempotencyKey(req.workspaceId, req.idempotencyKey ?? null);
    if (!run) throw new Error("idempotent create: no insert and no existing run");
    const same =
      run.type === req.type && stableJson(run.input) === stableJson(req.input ?? null) && run.retryOf === (req.retryOf ?? null);
    return same ? { ok: true, run, created: false } : { ok: false, conflict: run };
  }

  /**
   * Start attempt `attempt` for dispatch `dispatch` (contract v2 section 4): the
   * tracker allocates the attempt number; D1 records the start. `snapshot`: the
   * run as D1 last returned it to the caller (see `apply`), instead of a read.
   */
  claim(runId: string, attempt: number, dispatch?: number, snapshot?: RunRecord): Promise<RunAnswer> {
    return this.apply(runId, { type: "claim", attempt }, "system:consumer", (run, t, now) => {
      const policy = this.policy(run.type);
      let diagnostics = run.diagnostics;
      if (t.takeover) diagnostics = withAttempt(diagnostics, run.attempt, { endedAt: now, ended: "fenced (taken over)" });
      diagnostics = {
        ...diagnostics,
        attempts: [...diagnostics.attempts, { attempt, startedAt: now }].slice(-20),
        thresholds: thresholdsOf(policy, this.settings),
      };
      return {
        diagnostics,
        startedAt: run.startedAt ?? now,
        lastHeartbeatAt: now,
        deadlineAt: storedDeadline({ status: "running", queuedSince: now, lastFlushedHeartbeatAt: now }, policy),
        metadata: {
          attempt,
          ...(dispatch !== undefined ? { dispatch } : {}),
          ...(t.takeover ? { takeover: true, fencedAttempt: run.attempt } : {}),
        },
      };
    }, undefined, undefined, undefined, snapshot);
  }

  /**
   * Record that attempt `attempt` is alive. Throttled: it reaches D1 at most
   * once per flush interval per run (the condition is in the write itself, so
   * concurrent callers cannot exceed it). No audit event (contract section 2).
   */
  async heartbeat(hb: {
    runId: string;
    type: string;
    attempt: number;
    progress?: Progress;
    /** Bypass the throttle (the sweep asking the tracker to refresh D1); never moves the heartbeat back. */
    force?: boolean;
    /** When the heartbeat happened, if not now (the tracker may hold an older one). */
    at?: number;
  }): Promise<HeartbeatAnswer> {
    const now = hb.at ?? this.clock();
    const flushAfter = hb.force ? now - 1 : now - this.settings.heartbeatFlushIntervalMs;
    const res = await this.db
      .prepare(
        `UPDATE operation_runs
            SET last_heartbeat_at = ?1,
                deadline_at = ?1 + ?2,
                progress = COALESCE(?3, progress),
                updated_at = ?1
          WHERE id = ?4 AND status = 'running' AND attempt = ?5
            AND (last_heartbeat_at IS NULL OR last_heartbeat_at <= ?6)`,
      )
      .bind(
        now,
        this.policy(hb.type).staleRunningAfterMs,
        hb.progress ? JSON.stringify(hb.progress) : null,
        hb.runId,
        hb.attempt,
        flushAfter,
      )
      .run();
    if (res.meta.changes === 1) return { ok: true, flushed: true };
    const run = await this.getById(hb.runId);
    if (!run) return { ok: false, refusal: "not_found", run: null };
    const d = decide(stateOf(run), { type: "heartbeat", attempt: hb.attempt });
    return d.ok ? { ok: true, flushed: false } : { ok: false, refusal: d.refusal, run };
  }

  /** Attempt `attempt` returned a result. A late one is recorded as `run.late_result_discarded`. */
  /**
   * `outputJson`: the handler's output as JSON text, checked against
   * MAX_OUTPUT_BYTES by the caller; stored only for `succeeded` and
   * `partially_succeeded` (contract section 1: `NULL` otherwise). `snapshot`: as
   * for `claim`.
   */
  complete(
    runId: string,
    attempt: number,
    result: { outcome: FinalOutcome; message?: string; progress?: Progress; outputJson?: string },
    snapshot?: RunRecord,
  ): Promise<RunAnswer> {
    const event: LifecycleEvent = { type: "result", attempt, outcome: result.outcome };
    return this.apply(
      runId,
      event,
      "system:consumer",
      (run, t, now) => {
        const message = result.message ? sanitizeMessage(result.message) : null;
        return {
          progress: result.progress,
          output: result.outcome === "failed" ? null : (result.outputJson ?? null),
          // A failed run always carries an operator sentence: the handler's, or the reason's own.
          failureMessage:
            result.outcome === "succeeded" ? null : (message ?? (result.outcome === "failed" ? explainReason("handler.failed").whatHappened : null)),
          diagnostics: withAttempt(run.diagnostics, attempt, { endedAt: now, ended: result.outcome }),
          completedAt: now,
          deadlineAt: null,
          metadata: { attempt, outcome: result.outcome, message, progress: result.progress ?? run.progress },
        };
      },
      { outcome: result.outcome, message: result.message ?? null, progress: result.progress ?? null },
      undefined,
      (run) => run.status === "completed" && run.attempt === attempt && run.reconciledBy === null && run.outcome === result.outcome,
      snapshot,
    );
  }

  /**
   * Attempt `attempt` threw or timed out: requeue while attempts remain and it
   * is retryable (due after `retryAfterMs`, else the policy's delay), else fail.
   * `snapshot`: as for `claim`.
   */
  failAttempt(
    runId: string,
    attempt: number,
    failure: { reason: ExecutionReasonCode; retryable: boolean; error: unknown; progress?: Progress; retryAfterMs?: number },
    snapshot?: RunRecord,
  ): Promise<RunAnswer> {
    const message = errorMessage(failure.error);
    const event: LifecycleEvent = { type: "attempt_failure", attempt, retryable: failure.retryable, reason: failure.reason };
    return this.apply(
      runId,
      event,
      "system:consumer",
      (run, t, now) => {
        const policy = this.policy(run.type);
        const diagnostics: Diagnostics = {
          ...withAttempt(run.diagnostics, attempt, { endedAt: now, ended: failure.reason, error: message }),
          lastError: { attempt, message, reasonCode: failure.reason, at: now },
        };
        const progress = failure.progress ? { progress: failure.progress } : {};
        if (t.to.status === "queued") {
          // The handler's own delay (an upstream's Retry-After) where it gave one.
          const dueAt = now + retryDelayMs(policy, failure.retryAfterMs);
          return {
            ...progress,
            diagnostics,
            deadlineAt: storedDeadline({ status: "queued", queuedSince: dueAt, lastFlushedHeartbeatAt: null }, policy),
            metadata: { attempt, reason: failure.reason, error: message, retryAt: dueAt },
          };
        }
        return {
          ...progress,
          diagnostics,
          // Operator-safe: the raw error text stays in diagnostics (contract section 1).
          failureMessage: attemptFailureSentence(attempt, run.maxAttempts, failure.reason, message),
          completedAt: now,
          deadlineAt: null,
          metadata: { attempt, reason: failure.reason, error: message, retryable: failure.retryable },
        };
      },
      { reason: failure.reason, error: message },
      undefined,
      (run) =>
        run.attempt === attempt &&
        run.diagnostics.lastError?.attempt === attempt &&
        run.diagnostics.lastError.reasonCode === failure.reason &&
        (run.status === "queued" || (run.status === "completed" && run.reconciledBy === null)),
      snapshot,
    );
  }

  /** The tracker saw attempt `attempt` stop heartbeating. */
  heartbeatLost(runId: string, attempt: number, evidence: Evidence, progress?: Progress): Promise<RunAnswer> {
    return this.apply(runId, { type: "heartbeat_lost", attempt }, "system:tracker", (run, t, now) => {
      const policy = this.policy(run.type);
      const diagnostics = withAttempt(run.diagnostics, attempt, { endedAt: now, ended: "heartbeat lost" });
      if (t.to.status === "queued") {
        return {
          ...(progress ? { progress } : {}),
          diagnostics,
          deadlineAt: storedDeadline({ status: "queued", queuedSince: now, lastFlushedHeartbeatAt: null }, policy),
          metadata: { attempt, evidence },
        };
      }
      return {
        ...this.reconciledPatch(run, { ...diagnostics, detectedBy: "tracker_alarm", evidence }, now, { attempt, evidence }),
        ...(progress ? { progress } : {}),
      };
    });
  }

  /** A detector found the run overdue in the state it observed; resolve it as failed. */
  reconcile(
    runId: string,
    r: {
      detector: "tracker_alarm" | "sweep";
      reason: "lifecycle.stale_queued" | "lifecycle.stale_running";
      /** `deadlineAt`: the D1 deadline the detector read; the write is fenced on it (contract section 2). */
      observed: { status: "queued" | "running"; attempt: number; deadlineAt?: number | null };
      evidence: Evidence;
      progress?: Progress;
      /** The run as the detector just read it: the first compare-and-set round uses it instead of reading again. */
      snapshot?: RunRecord;
    },
  ): Promise<RunAnswer> {
    const actor: Actor = r.detector === "sweep" ? "system:sweep" : "system:tracker";
    const observed = { status: r.observed.status, attempt: r.observed.attempt };
    const event: LifecycleEvent = { type: "reconcile", detector: r.detector, reason: r.reason, observed };
    return this.apply(
      runId,
      event,
      actor,
      (run, _t, now) => ({
        ...this.reconciledPatch(run, { ...run.diagnostics, detectedBy: r.detector, evidence: r.evidence }, now, {
          reason: r.reason,
          observed: r.observed,
          evidence: r.evidence,
        }),
        ...(r.progress ? { progress: r.progress } : {}),
      }),
      undefined,
      r.observed.deadlineAt,
      undefined,
      r.snapshot,
    );
  }

  /**
   * Move a queued run's D1 deadline to what its tracker holds (a run adopted by
   * its tracker, or due later than D1 thought): only forward, only while the run
   * is still queued at `attempt`. No audit event: nothing happened to the run.
   */
  async moveQueuedDeadline(runId: string, attempt: number, deadlineAt: number): Promise<boolean> {
    const res = await this.db
      .prepare(
        `UPDATE operation_runs SET deadline_at = ?1, updated_at = ?2
          WHERE id = ?3 AND status = 'queued' AND attempt = ?4 AND deadline_at < ?1`,
      )
      .bind(deadlineAt, this.clock(), runId, attempt)
      .run();
    return res.meta.changes === 1;
  }

  /**
   * The tracker re-sent a dispatch nobody claimed (contract section 2: queued →
   * queued, deadline unchanged). Only the audit event is written, and only while
   * the run is still queued at `attempt`; a second call for the same send writes
   * a second event, which is what happened (the message went out twice).
   */
  async redispatched(runId: string, r: { attempt: number; dispatch: number; sends: number; at: number }): Promise<boolean> {
    const res = await this.db
      .prepare(
        `INSERT INTO audit_events (${AUDIT_COLUMNS})
         SELECT ?, workspace_id, 'system:tracker', 'run.redispatched', 'run', id, ?, ?
           FROM operation_runs WHERE id = ? AND status = 'queued' AND attempt = ?`,
      )
      .bind(newEventId(r.at), JSON.stringify({ dispatch: r.dispatch, sends: r.sends, attempt: r.attempt }), r.at, runId, r.attempt)
      .run();
    return res.meta.changes === 1;
  }

  /**
   * Record errors raised outside the handler (a result write that failed, a
   * tracker call that did not answer) on the run itself, so the operator sees
   * them in diagnostics rather than only in a log line (contract section 3).
   * Only a live run is changed: terminal is forever.
   */
  async noteInfrastructureErrors(runId: string, errors: InfrastructureError[]): Promise<void> {
    if (errors.length === 0) return;
    await this.db
      .prepare(
        `UPDATE operation_runs
            SET diagnostics = json_set(diagnostics, '$.infrastructureErrors', json(?))
          WHERE id = ? AND status <> 'completed'`,
      )
      .bind(JSON.stringify(errors.slice(-MAX_INFRASTRUCTURE_ERRORS)), runId)
      .run();
  }

  /**
   * An operator cancels the run (contract section 7). A queued run ends
   * `cancelled` at once: one write with `run.cancel_requested` then
   * `run.cancelled`. A running run records the request (`run.cancel_requested`;
   * it shows as Cancelling) and keeps running until its tracker ends the cancel
   * (`cancelStopped`) or the attempt's next report does. A second request for
   * a Cancelling run is refused as `duplicate` and writes nothing; a terminal
   * run is refused as `terminal`.
   */
  cancel(runId: string, req: { actor: Actor; actorId?: string; reason?: string | null }): Promise<RunAnswer> {
    const reason = req.reason ? sanitizeMessage(req.reason, MAX_CANCEL_REASON_LENGTH) : null;
    const requested = { reason, ...(req.actorId !== undefined ? { actorId: req.actorId } : {}) };
    return this.apply(runId, { type: "cancel" }, req.actor, (run, t, now) => {
      const cancelRequest = { at: now, by: req.actor };
      const diagnostics: Diagnostics = { ...run.diagnostics, cancelReason: reason };
      if (t.to.status === "completed") {
        return { diagnostics, deadlineAt: null, completedAt: now, cancelRequest, precedingEvents: [{ action: "run.cancel_requested", metadata: { ...requested, status: run.status } }], metadata: { ...requested, stopped: "queued" } };
      }
      return { diagnostics, deadlineAt: run.deadlineAt, cancelRequest, metadata: { ...requested, attempt: run.attempt } };
    });
  }

  /**
   * The cancelled run's attempt `attempt` stopped (`stopped`), or its cancel
   * grace ran out first (`grace_expired`): the run ends `cancelled`.
   */
  cancelStopped(
    runId: string,
    attempt: number,
    r: {
      how: "stopped" | "grace_expired";
      actor: "system:consumer" | "system:tracker";
      evidence?: Evidence;
      progress?: Progress;
      /** As for `claim`. */
      snapshot?: RunRecord;
    },
  ): Promise<RunAnswer> {
    return this.apply(
      runId,
      { type: "cancel_stopped", attempt },
      r.actor,
      (run) => ({
        ...(r.progress ? { progress: r.progress } : {}),
        diagnostics: r.evidence ? { ...run.diagnostics, evidence: r.evidence } : run.diagnostics,
        deadlineAt: null,
        ...(r.how === "grace_expired" ? { stopped: r.how } : {}),
        metadata: { attempt, ...(r.evidence ? { evidence: r.evidence } : {}) },
      }),
      undefined,
      undefined,
      (run) => run.outcome === "cancelled" && run.attempt === attempt && attemptEnded(run, attempt) === cancelledEnded(r.how),
      r.snapshot,
    );
  }

  /** The queue dead-lettered the run's message. */
  deadLetter(runId: string, evidence: Evidence): Promise<RunAnswer> {
    return this.apply(runId, { type: "dead_letter" }, "system:dead-letter", (run, _t, now) =>
      this.reconciledPatch(run, { ...run.diagnostics, detectedBy: "dead_letter", evidence }, now, { evidence }),
    );
  }

  private reconciledPatch(run: RunRecord, diagnostics: Diagnostics, now: number, metadata: Record<string, unknown>): Patch {
    return {
      diagnostics: { ...diagnostics, thresholds: thresholdsOf(this.policy(run.type), this.settings) },
      completedAt: now,
      deadlineAt: null,
      metadata: { ...metadata, lastError: run.diagnostics.lastError?.message ?? null },
    };
  }

  /**
   * Read, decide, compare-and-set; on a lost race, read again. The audit
   * insert rides in the same batch and exists only if the update won.
   */
  private async apply(
    runId: string,
    event: LifecycleEvent,
    actor: Actor,
    patchFor: (run: RunRecord, t: Transition, now: number) => Patch,
    lateReport?: Record<string, unknown>,
    expectDeadlineAt?: number | null,
    sameAsApplied?: (run: RunRecord) => boolean,
    snapshot?: RunRecord,
  ): Promise<RunAnswer> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      // The caller's own row serves the first round (the sweep's overdue read, the row a
      // tracker got back from its last write): no second read of the same row. It is fenced
      // (`snapshotFence`), so a write that landed since loses a round, not data.
      const fromSnapshot = round === 0 && snapshot !== undefined && snapshot.id === runId;
      const run = fromSnapshot ? snapshot : await this.getById(runId);
      if (!run) return { ok: false, refusal: "not_found", run: null };
      // A detector fenced on the deadline it read: a deadline that moved since
      // (a fresher heartbeat, a new dispatch) means its observation is stale.
      if (expectDeadlineAt !== undefined && run.status !== "completed" && run.deadlineAt !== expectDeadlineAt) {
        return { ok: false, refusal: "fenced", run };
      }
      const now = this.clock();
      const d = decide(stateOf(run), event);
      // A refusal (and a late result's event) is decided on a read, never on a snapshot that may be old.
      if (!d.ok && fromSnapshot) continue;
      if (!d.ok) {
        // The same report of the same attempt again (a retry of a write whose answer
        // was lost): already applied, so a no-op and not a late result (contract section 1).
        if (sameAsApplied?.(run)) return { ok: false, refusal: "duplicate", run };
        // The same, where that report ended a Cancelling run `cancelled`.
        if (run.outcome === "cancelled" && "attempt" in event && event.attempt === run.attempt && attemptEnded(run, event.attempt) === cancelledEnded(stoppedHow(event))) {
          return { ok: false, refusal: "duplicate", run };
        }
        if (d.action === "run.late_result_discarded") {
          // Recorded, never applied: terminal is forever and a fenced attempt changes nothing.
          await insertAuditEvent(this.db, {
            workspaceId: run.workspaceId,
            actor,
            action: d.action,
            subjectType: "run",
            subjectId: run.id,
            metadata: { attempt: "attempt" in event ? event.attempt : null, refusal: d.refusal, reported: lateReport ?? {} },
            createdAt: now,
          }).run();
        }
        return { ok: false, refusal: d.refusal, run };
      }
      if (d.action === null) throw new Error("heartbeats are written by heartbeat(), not as transitions");
      let p = patchFor(run, d, now);
      if (d.action === "run.cancelled") p = cancelledPatch(run, p, event, actor, now);
      const to = d.to;
      const cancel = p.cancelRequest ?? (run.cancelRequestedAt !== null ? { at: run.cancelRequestedAt, by: run.cancelRequestedBy } : null);
      // A cancel is the operator's decision: its terminal event names them, the detector is in its metadata.
      const eventActor = d.action === "run.cancelled" && cancel?.by ? asActor(cancel.by, actor) : actor;
      const preceding = (p.precedingEvents ?? []).map((e) =>
        insertAuditEventIfWon(this.db, {
          workspaceId: run.workspaceId,
          actor,
          action: e.action,
          subjectType: "run",
          subjectId: run.id,
          metadata: e.metadata,
          createdAt: now,
        }),
      );
      const failureMessage =
        p.failureMessage !== undefined
          ? p.failureMessage
          : to.reasonCode && to.status === "completed"
            ? explainReason(to.reasonCode, to).whatHappened
            : run.failureMessage;
      // The run became completed: its webhook outbox rows ride in the same batch, after the guarded audit insert.
      const outbox = to.status === "completed" ? outboxInsertFor(run, to, { completedAt: p.completedAt ?? now, failureMessage }) : null;
      const set = changedColumns(run, {
        status: to.status,
        outcome: to.outcome,
        attempt: to.attempt,
        reason_code: to.reasonCode,
        reconciled_by: to.reconciledBy,
        failure_message: failureMessage,
        diagnostics: JSON.stringify(p.diagnostics),
        progress: JSON.stringify(p.progress ?? run.progress),
        deadline_at: p.deadlineAt,
        started_at: p.startedAt ?? run.startedAt,
        completed_at: p.completedAt ?? run.completedAt,
        last_heartbeat_at: p.lastHeartbeatAt ?? run.lastHeartbeatAt,
        updated_at: now,
        ...(p.output !== undefined && p.output !== null ? { output: p.output } : {}),
        cancel_requested_at: cancel?.at ?? null,
        cancel_requested_by: cancel?.by ?? null,
      });
      const fence = fromSnapshot ? snapshotFence(run) : NO_FENCE;
      const results = await this.db.batch<RunRow>([
        this.db
          .prepare(
            `UPDATE operation_runs SET ${set.map(([column]) => `${column} = ?`).join(", ")}
              WHERE id = ? AND status = ? AND attempt = ? AND (? = 0 OR deadline_at IS ?)${fence.sql}
                AND cancel_requested_at IS ?${fromSnapshot ? "" : `
          RETURNING ${RUN_COLUMNS}`}`,
          )
          .bind(
            ...set.map(([, value]) => value),
            run.id,
            run.status,
            run.attempt,
            expectDeadlineAt === undefined ? 0 : 1,
            expectDeadlineAt ?? null,
            ...fence.binds,
            // Fenced on the cancel flag too: a decision made before a cancel request landed is re-made.
            run.cancelRequestedAt,
          ),
        // Each guarded insert follows the one before it: all exist exactly when the update won.
        ...preceding,
        insertAuditEventIfWon(this.db, {
          workspaceId: run.workspaceId,
          actor: eventActor,
          action: d.action,
          subjectType: "run",
          subjectId: run.id,
          metadata: { from: run.status, to: to.status, ...p.metadata },
          createdAt: now,
        }),
        // The admin's failure tiles count from here; guarded like the event (src/runs/failure-counts.ts).
        ...(to.status === "completed" && to.outcome === "failed" ? [countFailureIfWon(this.db, run, to.reasonCode)] : []),
        ...(outbox ? [prepared(this.db, outbox.statement), prepared(this.db, outbox.endpoints)] : []),
      ]);
      const update = results[0];
      // On the caller's snapshot the row comes from it, not from RETURNING, which D1 bills a row read
      // per write (the sweep's cost per overdue run, the tracker's claim and completion): a won
      // compare-and-set fenced on the snapshot's status, attempt, cancel flag and `snapshotFence`'s
      // columns leaves every column it does not set as the snapshot has it.
      const row = fromSnapshot ? (update?.meta.changes === 1 ? withColumns(run, set) : undefined) : update?.results[0];
      if (row) {
        // The outbox's endpoints read is the batch's last statement.
        if (outbox) await announceDeliveries(this.options.webhooks, outbox.messageId, endpointIdsOf(results[results.length - 1]));
        return { ok: true, run: rowToRecord(row), transition: d };
      }
      // Lost the compare-and-set to another writer: decide again on what it wrote.
    }
    throw new ContentionError(`run ${runId}: no decision after ${MAX_CAS_ROUNDS} rounds`);
  }
}

/**
 * The `run.retried` event on the original run, naming the new one. Only if the
 * statement before it (the new run's guarded `run.queued` insert) wrote a row.
 */
function retriedEvent(db: D1Database, req: CreateRunInput & { retryOf: string }, newRunId: string, now: number): D1PreparedStatement {
  return insertAuditEventIfWon(db, {
    workspaceId: req.workspaceId,
    actor: req.initiator,
    action: "run.retried",
    subjectType: "run",
    subjectId: req.retryOf,
    metadata: { retryRunId: newRunId, ...(req.actorId !== undefined ? { actorId: req.actorId } : {}) },
    createdAt: now,
  });}

/** An operator's cancel reason is kept (in the audit events) up to this many characters. */
export const MAX_CANCEL_REASON_LENGTH = 500;

/** How the attempt of a Cancelling run ended, as the event that ended it says. */
function stoppedHow(event: LifecycleEvent): string {
  switch (event.type) {
    case "result":
      return `reported ${event.outcome}`;
    case "attempt_failure":
      return `reported ${event.reason}`;
    case "heartbeat_lost":
      return "heartbeat lost";
    case "reconcile":
      return `found overdue by the ${event.detector === "sweep" ? "sweep" : "tracker"}`;
    case "cancel_stopped":
      return "stopped";
    default:
      return event.type;
  }
}

/** The attempt summary's `ended` for an attempt a cancel ended. */
function cancelledEnded(how: string): string {
  return `cancelled (${how.replaceAll("_", " ")})`;
}

function attemptEnded(run: RunRecord, attempt: number): string | undefined {
  return run.diagnostics.attempts.find((a) => a.attempt === attempt)?.ended;
}

/** A stored actor string as an `Actor` (the people's kinds); anything else falls back to `fallback`. */
function asActor(value: string, fallback: Actor): Actor {
  return value.startsWith("user:") || value.startsWith("api-token:") ? (value as Actor) : fallback;
}

/**
 * The patch of a transition that ends a run `cancelled` (contract sections 2
 * and 7), whichever event ended it: the operator's sentence as its message, the
 * attempt's end in diagnostics, and in the event what the attempt reported.
 */
function cancelledPatch(run: RunRecord, p: Patch, event: LifecycleEvent, actor: Actor, now: number): Patch {
  const how = event.type === "cancel" ? "queued" : (p.stopped ?? stoppedHow(event));
  const by = p.cancelRequest?.by ?? run.cancelRequestedBy;
  const diagnostics = run.status === "running" ? withAttempt(p.diagnostics, run.attempt, { endedAt: now, ended: cancelledEnded(how) }) : p.diagnostics;
  const reason = p.diagnostics.cancelReason ?? null;
  // The operator's own words, for everyone who may read the run: their reason is written for them.
  const sentence = `Cancelled by ${by ? actorName(by) : "an operator"}`;
  return {
    ...p,
    failureMessage: truncateText(reason ? `${sentence}: ${reason}` : `${sentence}.`),
    diagnostics,
    completedAt: now,
    deadlineAt: null,
    metadata: { ...p.metadata, stopped: how, ...(event.type !== "cancel" ? { detectedBy: event.type === "cancel_stopped" ? actor : detectorActor(event) } : {}) },
  };
}

/** Which piece of the system saw the Cancelling attempt end. */
function detectorActor(event: LifecycleEvent): string {
  switch (event.type) {
    case "result":
    case "attempt_failure":
      return "system:consumer";
    case "reconcile":
      return event.detector === "sweep" ? "system:sweep" : "system:tracker";
    case "dead_letter":
      return "system:dead-letter";
    default:
      return "system:tracker";
  }
}

/** The row `run` becomes once `set` (a won UPDATE's SET list, column → value) is written over it. */
function withColumns(run: RunRecord, set: [string, string | number | null][]): RunRow {
  const row: Record<string, string | number | null> = { ...recordToRow(run) };
  for (const [column, value] of set) row[column] = value;
  // Every key is a column of operation_runs: the snapshot's row, then the SET list's own columns.
  return row as unknown as RunRow;
}

const NO_FENCE = { sql: "", binds: [] as (string | number | null)[] };

/**
 * The compare-and-set's extra condition when it decides on a caller's snapshot
 * rather than a read: the row must still hold, besides the status, attempt and
 * cancel flag every transition fences on, each column another writer changes
 * without a transition. A heartbeat flush only moves `last_heartbeat_at`
 * forward, a deadline move only `deadline_at` (both conditions in their own
 * writes), and infrastructure errors change `diagnostics`; `updated_at`, which
 * every other write sets, is checked too. A snapshot that misses any of them
 * loses the round, and the next one reads (never a progress flushed since, or a
 * cancel request, overwritten).
 */
function snapshotFence(run: RunRecord): { sql: string; binds: (string | number | null)[] } {
  return {
    sql: " AND diagnostics = ? AND updated_at = ? AND last_heartbeat_at IS ? AND deadline_at IS ?",
    binds: [JSON.stringify(run.diagnostics), run.updatedAt, run.lastHeartbeatAt, run.deadlineAt],
  };
}

/** Columns an index covers (or filters on): rewriting one writes index entries, even with its old value. */
const INDEXED_COLUMNS = new Set(["outcome", "deadline_at", "completed_at"]);

/**
 * The SET list of a transition: every column, except an indexed one whose
 * value is unchanged. SQLite rewrites the entries of every index on a column
 * named in SET, whether or not the value changed, and D1 bills each as a row
 * written; `status` changes in every transition, so it is always set.
 */
function changedColumns(run: RunRecord, next: Record<string, string | number | null>): [string, string | number | null][] {
  const current: Record<string, string | number | null> = {
    outcome: run.outcome,
    deadline_at: run.deadlineAt,
    completed_at: run.completedAt,
  };
  return Object.entries(next).filter(([column, value]) => !INDEXED_COLUMNS.has(column) || current[column] !== value);
}

/** At most this many infrastructure errors are kept on a run (the latest). */
const MAX_INFRASTRUCTURE_ERRORS = 5;

/** An error raised outside the handler, as recorded on the run. */
export interface InfrastructureError {
  at: number;
  /** Where it happened: "result_write", "claim", "alarm", … */
  where: string;
  message: string;
}

/**
 * The operator-safe sentence of a terminal attempt failure. A handler's own
 * error text is raw (it may carry upstream bodies or secrets), so it stays in
 * diagnostics; the other reasons' messages are this system's own sentences.
 */
function attemptFailureSentence(attempt: number, maxAttempts: number, reason: ExecutionReasonCode, message: string): string {
  const which = `Attempt ${attempt} of ${maxAttempts}`;
  if (reason === "handler.error") return `${which} failed with an error; the error is in diagnostics.`;
  return truncateText(`${which} failed: ${message}`);
}

export function thresholdsOf(policy: LifecyclePolicy, settings: LifecycleSettings): Record<string, number> {
  return {
    timeoutMs: policy.timeoutMs,
    heartbeatIntervalMs: policy.heartbeatIntervalMs,
    heartbeatTimeoutMs: policy.heartbeatTimeoutMs,
    staleQueuedAfterMs: policy.staleQueuedAfterMs,
    staleRunningAfterMs: policy.staleRunningAfterMs,
    maxAttempts: policy.maxAttempts,
    retryDelaySeconds: policy.retryDelaySeconds,
    heartbeatFlushIntervalMs: settings.heartbeatFlushIntervalMs,
    sweepGraceMs: settings.sweepGraceMs,
  };
}
