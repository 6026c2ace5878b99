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
  DEFAULT_SETTINGS,
  decide,
  errorMessage,
  explainReason,
  initialState,
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
import { AUDIT_COLUMNS, insertAuditEvent, insertAuditEventIfWon, type Actor } from "./audit";
import { countFailureIfWon } from "./failure-counts";
import { newEventId, newRunId } from "./ids";
import { RUN_COLUMNS, rowToRecord, stateOf, type Diagnostics, type RunRecord, type RunRow } from "./records";

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
  failureMessage?: string | null;
  diagnostics: Diagnostics;
  lastHeartbeatAt?: number;
  startedAt?: number;
  completedAt?: number;
  deadlineAt: number | null;
  metadata: Record<string, unknown>;
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
  async get(workspaceId: string, runId: string): Promise<RunRecord | null> {
    const row = await this.db
      .prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE id = ? AND workspace_id = ?`)
      .bind(runId, workspaceId)
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
    const [inserted] = await this.db.batch([
      this.db
        .prepare(
          `INSERT INTO operation_runs (${RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, ?, NULL, NULL, ?, NULL, ?, ?, ?)
           ON CONFLICT (workspace_id, idempotency_key) DO NOTHING`,
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
        },
        createdAt: now,
      }),
    ]);
    if ((inserted?.meta.changes ?? 0) === 1) {
      const run = await this.getById(id);
      if (!run) throw new Error(`run ${id} vanished right after its insert`);
      return { ok: true, run, created: true };
    }
    const existing = await this.db
      .prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE workspace_id = ? AND idempotency_key = ?`)
      .bind(req.workspaceId, req.idempotencyKey ?? null)
      .first<RunRow>();
    if (!existing) throw new Error("idempotent create: no insert and no existing run");
    const run = rowToRecord(existing);
    const same = run.type === req.type && stableJson(run.input) === stableJson(req.input ?? null);
    return same ? { ok: true, run, created: false } : { ok: false, conflict: run };
  }

  /**
   * Start attempt `attempt` for dispatch `dispatch` (contract v2 section 4): the
   * tracker allocates the attempt number; D1 records the start.
   */
  claim(runId: string, attempt: number, dispatch?: number): Promise<RunAnswer> {
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
    });
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
  complete(runId: string, attempt: number, result: { outcome: FinalOutcome; message?: string; progress?: Progress }): Promise<RunAnswer> {
    const event: LifecycleEvent = { type: "result", attempt, outcome: result.outcome };
    return this.apply(
      runId,
      event,
      "system:consumer",
      (run, t, now) => {
        const message = result.message ? sanitizeMessage(result.message) : null;
        return {
          progress: result.progress,
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
    );
  }

  /** Attempt `attempt` threw or timed out: requeue while attempts remain and it is retryable, else fail. */
  failAttempt(
    runId: string,
    attempt: number,
    failure: { reason: ExecutionReasonCode; retryable: boolean; error: unknown; progress?: Progress },
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
          const dueAt = now + policy.retryDelaySeconds * 1000;
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
  ): Promise<RunAnswer> {
    for (let round = 0; round < MAX_CAS_ROUNDS; round++) {
      const run = await this.getById(runId);
      if (!run) return { ok: false, refusal: "not_found", run: null };
      // A detector fenced on the deadline it read: a deadline that moved since
      // (a fresher heartbeat, a new dispatch) means its observation is stale.
      if (expectDeadlineAt !== undefined && run.status !== "completed" && run.deadlineAt !== expectDeadlineAt) {
        return { ok: false, refusal: "fenced", run };
      }
      const now = this.clock();
      const d = decide(stateOf(run), event);
      if (!d.ok) {
        // The same report of the same attempt again (a retry of a write whose answer
        // was lost): already applied, so a no-op and not a late result (contract section 1).
        if (sameAsApplied?.(run)) return { ok: false, refusal: "duplicate", run };
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
      const p = patchFor(run, d, now);
      const to = d.to;
      const failureMessage =
        p.failureMessage !== undefined
          ? p.failureMessage
          : to.reasonCode && to.status === "completed"
            ? explainReason(to.reasonCode, to).whatHappened
            : run.failureMessage;
      const [update] = await this.db.batch<RunRow>([
        this.db
          .prepare(
            `UPDATE operation_runs
                SET status = ?, outcome = ?, attempt = ?, reason_code = ?, reconciled_by = ?,
                    failure_message = ?, diagnostics = ?, progress = ?, deadline_at = ?,
                    started_at = ?, completed_at = ?, last_heartbeat_at = ?, updated_at = ?
              WHERE id = ? AND status = ? AND attempt = ? AND (? = 0 OR deadline_at IS ?)
          RETURNING ${RUN_COLUMNS}`,
          )
          .bind(
            to.status,
            to.outcome,
            to.attempt,
            to.reasonCode,
            to.reconciledBy,
            failureMessage,
            JSON.stringify(p.diagnostics),
            JSON.stringify(p.progress ?? run.progress),
            p.deadlineAt,
            p.startedAt ?? run.startedAt,
            p.completedAt ?? run.completedAt,
            p.lastHeartbeatAt ?? run.lastHeartbeatAt,
            now,
            run.id,
            run.status,
            run.attempt,
            expectDeadlineAt === undefined ? 0 : 1,
            expectDeadlineAt ?? null,
          ),
        insertAuditEventIfWon(this.db, {
          workspaceId: run.workspaceId,
          actor,
          action: d.action,
          subjectType: "run",
          subjectId: run.id,
          metadata: { from: run.status, to: to.status, ...p.metadata },
          createdAt: now,
        }),
        // The admin's failure tiles count from here; guarded like the event (src/runs/failure-counts.ts).
        ...(to.status === "completed" && to.outcome === "failed" ? [countFailureIfWon(this.db, run, to.reasonCode)] : []),
      ]);
      const row = update?.results[0];
      if (row) return { ok: true, run: rowToRecord(row), transition: d };
      // Lost the compare-and-set to another writer: decide again on what it wrote.
    }
    throw new ContentionError(`run ${runId}: no decision after ${MAX_CAS_ROUNDS} rounds`);
  }
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
