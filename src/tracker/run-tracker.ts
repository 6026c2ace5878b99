/**
 * The per-run tracker (contract v2 section 4): one SQLite-backed Durable Object
 * per run is the run's scheduler, lease holder and outbox.
 *
 * - It sends every dispatch (acceptance, a retry when due, at once after a lost
 *   attempt); a send that fails stays in its storage and the alarm retries it.
 * - It allocates attempt numbers at claim, for its current dispatch only, once.
 * - It stores an attempt's report before answering, then applies it to D1; the
 *   alarm applies what D1 refused to take.
 * - It keeps one alarm at its earliest deadline, and re-arms it with backoff
 *   when the alarm's own work fails.
 *
 * Every D1 transition still goes through the run service's compare-and-set, so
 * the tracker, the sweep and the dead-letter bridge can never both win; the
 * tracker follows what D1 says after each write.
 *
 * Concurrency: the runtime lets another request in while a method awaits D1 or
 * the queue (input gates only hold across storage calls), so every method runs
 * inside `serial()`: one at a time, in arrival order. State therefore never
 * moves backwards across an await (a heartbeat's flush cannot overwrite a result
 * that landed meanwhile).
 */
import { DurableObject } from "cloudflare:workers";
import { DEFAULT_SETTINGS, errorMessage, type LifecyclePolicy, type Progress } from "../lifecycle";
import { checkOutputJson, policyFor } from "../operations";
import type { InfrastructureError, RunAnswer, RunRecord, RunService } from "../runs";
import { log } from "../log";
import { runServiceFor } from "../run-service";
import { operationMessageFor } from "../queue/messages";
import { producerFor } from "../queue/routing";
import {
  alarmAction,
  backoffMs,
  initialTrackerState,
  nextAlarmAt,
  nextDispatch,
  staleQueuedAt,
  upgradeState,
  vouches,
  withError,
  type PendingReport,
  type TrackerState,
} from "./state";
import type {
  AttemptReport,
  CancelAnswer,
  CancelRequest,
  ClaimAnswer,
  DeadLetterAnswer,
  DeadLetterRequest,
  HeartbeatReply,
  ReportAnswer,
  TrackAnswer,
  TrackerRefusal,
  TrackerStatus,
  TrackRequest,
} from "./protocol";

const STATE_KEY = "state";

/** A result whose output is over MAX_OUTPUT_BYTES becomes the attempt's non-retryable `handler.error`. */
function withinOutputCap(report: AttemptReport): AttemptReport {
  if (report.kind !== "result" || report.outputJson === undefined) return report;
  const check = checkOutputJson(report.outputJson);
  if (check.ok) return report;
  const { attempt, progress } = report;
  return { kind: "failure", attempt, reason: "handler.error", retryable: false, message: check.message, ...(progress ? { progress } : {}) };
}

/** What a cancel did, from the run service's answer. */
function cancelAnswerOf(answer: RunAnswer): CancelAnswer {
  if (answer.ok) return answer.run.status === "completed" ? { result: "cancelled" } : { result: "cancelling", already: false };
  if (answer.refusal === "duplicate") return { result: "cancelling", already: true };
  if (answer.refusal === "not_found") return { result: "not_found" };
  return { result: "terminal" };
}

export class RunTracker extends DurableObject<Env> {
  private state: TrackerState | null | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * The run as D1 last returned it to this tracker (the acceptance's insert, the
   * row a transition wrote, a read): the next transition's first compare-and-set
   * decides on it instead of reading the row again (src/runs/service.ts `apply`,
   * which fences it so that an old one costs a round, never data). Memory only:
   * after a reset the next transition reads, as it would without one.
   */
  private snapshot: RunRecord | null = null;

  /** The run service; any call may change the row, so the snapshot goes until an answer brings the row back. */
  private service(): RunService {
    this.snapshot = null;
    return runServiceFor(this.env.DB, this.env.WEBHOOKS_QUEUE);
  }

  /** Run `fn` after every call that arrived before it has finished (see the file's comment). */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async load(): Promise<TrackerState | null> {
    if (this.state !== undefined) return this.state;
    const stored = await this.ctx.storage.get<unknown>(STATE_KEY);
    if (stored === undefined) return (this.state = null);
    let state = upgradeState(stored, null);
    if (!state) {
      // A v1 state (before the dispatch model): complete it from the run's record.
      const runId = (stored as { runId?: unknown }).runId;
      const run = typeof runId === "string" ? await this.service().getById(runId) : null;
      state = upgradeState(stored, run);
      if (!state) {
        log.warn("tracker.state_unreadable", { runId: typeof runId === "string" ? runId : null });
        await this.ctx.storage.deleteAll();
        return (this.state = null);
      }
      await this.ctx.storage.put(STATE_KEY, state);
    }
    return (this.state = state);
  }

  /** Persist and re-arm the single alarm at the state's next deadline. */
  private async save(s: TrackerState): Promise<void> {
    this.state = s;
    await this.ctx.storage.put(STATE_KEY, s);
    await this.ctx.storage.setAlarm(nextAlarmAt(s, policyFor(s.type), Date.now()));
  }

  private noteError(s: TrackerState, where: string, error: unknown): TrackerState {
    const message = errorMessage(error);
    log.error("tracker.error", { runId: s.runId, attempt: s.attempt, where, error: message });
    return { ...s, errors: withError(s.errors, { at: Date.now(), where, message }) };
  }

  /**
   * Mirror what D1 says after a transition or a refusal (D1 is the record; the
   * tracker follows it, never backwards). A run D1 put back in the queue after
   * the tracker's attempt ended gets a new dispatch, due when D1 says.
   */
  private followed(s: TrackerState, run: RunRecord): TrackerState {
    this.snapshot = run;
    if (run.status === "completed") {
      return { ...s, status: "completed", attempt: Math.max(s.attempt, run.attempt), pending: null, completedAt: run.completedAt ?? Date.now(), progress: run.progress };
    }
    if (run.attempt < s.attempt) return s;
    if (run.status === "running") {
      // A cancel D1 holds (requested through this tracker, or by D1 alone when it held no state).
      const cancel = run.cancelRequestedAt !== null && run.cancelRequestedBy !== null ? { requestedAt: run.cancelRequestedAt, by: run.cancelRequestedBy } : (s.cancel ?? null);
      if (s.status === "running" && run.attempt === s.attempt) return cancel === (s.cancel ?? null) ? s : { ...s, cancel };
      // D1 started this attempt although the tracker had not recorded it (a claim
      // whose answer was lost): adopt it; its heartbeat deadline decides from here.
      return {
        ...s,
        status: "running",
        attempt: run.attempt,
        dispatch: { ...s.dispatch, claimed: true },
        lastHeartbeatAt: Math.max(s.lastHeartbeatAt ?? 0, run.lastHeartbeatAt ?? run.startedAt ?? Date.now()),
        lastFlushedAt: run.lastHeartbeatAt,
        cancel,
      };
    }
    // queued
    if (s.status === "queued" && run.attempt === s.attempt) return s;
    // Due when D1 says (a retry's delay), but never in the past: a write that landed
    // late (D1 refused it for a while) makes a dispatch that exists only from now, and
    // its stale threshold counts from now (the sweep's refresh moves D1's deadline).
    const policy = policyFor(run.type);
    const d1Due = run.deadlineAt !== null ? run.deadlineAt - policy.staleQueuedAfterMs : Date.now();
    const dueAt = Math.max(d1Due, Date.now());
    return { ...s, status: "queued", attempt: run.attempt, dispatch: nextDispatch(s, dueAt), pending: null, progress: run.progress };
  }

  /**
   * Send the current dispatch if it is unclaimed and has not reached the queue
   * (or is due for a re-send): with `delaySeconds` until its due time. A failed
   * send leaves it in the outbox with a backoff; the alarm tries again.
   */
  private async send(s: TrackerState, resend: boolean): Promise<TrackerState> {
    if (s.status !== "queued" || s.dispatch.claimed) return s;
    const now = Date.now();
    const policy = policyFor(s.type);
    try {
      const delaySeconds = Math.min(43_200, Math.max(0, Math.ceil((s.dispatch.dueAt - now) / 1000)));
      await producerFor(this.env, policy.queue).send(operationMessageFor({ id: s.runId, workspaceId: s.workspaceId, type: s.type }, s.dispatch.n), {
        contentType: "json",
        ...(delaySeconds > 0 ? { delaySeconds } : {}),
      });
    } catch (error) {
      const failed = this.noteError(s, resend ? "redispatch" : "dispatch", error);
      const dispatch = { ...s.dispatch, refused: (s.dispatch.refused ?? 0) + 1 };
      return { ...failed, dispatch, failures: s.failures + 1, retryAt: now + backoffMs(s.failures + 1) };
    }
    const sent: TrackerState = { ...s, dispatch: { ...s.dispatch, sends: s.dispatch.sends + 1, sentAt: now }, failures: 0, retryAt: null };
    if (resend) {
      // The re-send is part of the run's story (contract section 2: run.redispatched).
      try {
        await this.service().redispatched(s.runId, { attempt: s.attempt, dispatch: s.dispatch.n, sends: sent.dispatch.sends, at: now });
      } catch (error) {
        return this.noteError(sent, "redispatch_audit", error);
      }
    }
    return sent;
  }

  /** Record the errors the tracker saw outside the handler on the run itself (best effort; kept until it works). */
  private async flushErrors(s: TrackerState): Promise<TrackerState> {
    if (s.errors.length === 0 || s.status === "completed") return s;
    try {
      const errors: InfrastructureError[] = s.errors;
      await this.service().noteInfrastructureErrors(s.runId, errors);
      return { ...s, errors: [] };
    } catch (error) {
      log.error("tracker.errors_not_recorded", { runId: s.runId, error });
      return s;
    }
  }

  /**
   * Take a queued run: store dispatch 1 and send it (acceptance), or adopt an
   * orphan the sweep found with no tracker. Idempotent: a tracker that already
   * holds the run only re-tries a dispatch still in its outbox.
   */
  async track(req: TrackRequest): Promise<TrackAnswer> {
    return this.serial(async () => {
      let s = await this.load();
      if (!s) {
        s = initialTrackerState(req);
        // Stored before the send: if the send fails or this object is reset, the alarm still has it.
        await this.save(s);
        this.snapshot = req.snapshot?.id === req.runId ? req.snapshot : null;
      }
      if (s.status === "queued" && !s.dispatch.claimed && s.dispatch.sends === 0) {
        s = await this.send(s, false);
        await this.save(s);
      }
      if (req.adopt) {
        // An orphan adopted late: D1's deadline moves to this dispatch's, so the run
        // does not read as overdue while its dispatch is in flight (best effort).
        try {
          await this.service().moveQueuedDeadline(s.runId, s.attempt, staleQueuedAt(s, policyFor(s.type)));
        } catch (error) {
          // Kept (recorded on the run at its next transition); the sweep's next refresh retries the move.
          s = this.noteError(s, "adopt", error);
          await this.save(s);
        }
      }
      return { tracked: true, dispatch: s.dispatch.n, sent: s.dispatch.sends > 0 };
    });
  }

  /**
   * Start an attempt for `dispatch` (null: a v1 message, which claims the
   * current dispatch). Only the current, unclaimed dispatch of a queued run
   * starts one, once; the attempt number is allocated here.
   */
  async claim(req: { runId: string; dispatch: number | null }): Promise<ClaimAnswer> {
    return this.serial(async () => {
      let s = await this.load();
      if (!s) return { ok: false, refusal: "not_found" };
      if (s.status === "completed") return { ok: false, refusal: "terminal" };
      const dispatch = req.dispatch ?? s.dispatch.n;
      if (dispatch !== s.dispatch.n) return { ok: false, refusal: "stale_dispatch" };
      if (s.dispatch.claimed || s.status !== "queued") return { ok: false, refusal: "duplicate" };
      if (s.attempt >= s.maxAttempts) return { ok: false, refusal: "exhausted" };
      const attempt = s.attempt + 1;
      const snapshot = this.snapshot ?? undefined;
      let answer: RunAnswer;
      try {
        answer = await this.service().claim(s.runId, attempt, dispatch, snapshot);
      } catch (error) {
        // Nothing decided here; the consumer retries the message. If D1 did commit
        // and only the answer was lost, the next claim (or the alarm) adopts it.
        await this.save(this.noteError(s, "claim", error));
        throw error;
      }
      const run = answer.run;
      const ours = answer.ok || (run !== null && run.status === "running" && run.attempt === attempt && answer.refusal === "duplicate");
      if (!ours || !run) {
        if (run) await this.save(this.followed(s, run));
        return { ok: false, refusal: answer.ok ? "duplicate" : answer.refusal };
      }
      // The row the claim wrote (or the read that found it ours): the completion decides on it.
      this.snapshot = run;
      const now = Date.now();
      s = {
        ...s,
        status: "running",
        attempt,
        dispatch: { ...s.dispatch, claimed: true },
        lastHeartbeatAt: now,
        lastFlushedAt: run.lastHeartbeatAt,
        progress: run.progress,
      };
      s = await this.flushErrors(s);
      await this.save(s);
      return {
        ok: true,
        run: {
          runId: run.id,
          workspaceId: run.workspaceId,
          type: run.type,
          inputJson: JSON.stringify(run.input),
          attempt,
          maxAttempts: run.maxAttempts,
          dispatch,
          progress: run.progress,
        },
      };
    });
  }

  /**
   * A heartbeat (with progress) from attempt n. It lands in this object's
   * storage every time and in D1 at most once per flush interval. A fenced or
   * terminal answer tells the attempt to abort.
   */
  async heartbeat(req: { attempt: number; progress?: Progress }): Promise<HeartbeatReply> {
    return this.serial(async () => {
      const s = await this.load();
      if (!s) return { ok: false, refusal: "not_found" };
      if (s.status === "completed") return { ok: false, refusal: "terminal" };
      if (s.status !== "running" || s.attempt !== req.attempt) return { ok: false, refusal: "fenced" };
      const now = Date.now();
      let next: TrackerState = { ...s, lastHeartbeatAt: now, progress: req.progress ?? s.progress };
      const due = s.lastFlushedAt === null || now - s.lastFlushedAt >= DEFAULT_SETTINGS.heartbeatFlushIntervalMs;
      if (due && !s.pending) {
        try {
          const flushed = await this.service().heartbeat({
            runId: s.runId,
            type: s.type,
            attempt: req.attempt,
            ...(next.progress ? { progress: next.progress } : {}),
          });
          if (!flushed.ok) {
            // D1 moved on without this tracker (the sweep or the dead-letter bridge decided).
            if (flushed.run) await this.save(this.followed(next, flushed.run));
            return { ok: false, refusal: flushed.refusal };
          }
          if (flushed.flushed) next.lastFlushedAt = now;
        } catch (error) {
          // D1 unavailable: the attempt is alive (this object knows it), so the
          // heartbeat still counts here; the flush is retried on the next one.
          next = this.noteError(next, "heartbeat_flush", error);
        }
      }
      // Storage only: the alarm stays armed at the earlier deadline and, when it
      // fires, re-arms at the heartbeat's new one.
      this.state = next;
      await this.ctx.storage.put(STATE_KEY, next);
      // Cancelling: the attempt learns it here and stops (contract section 7). It keeps
      // heartbeating until its `stopped` report is held, so it is not declared lost meanwhile.
      return s.cancel ? { ok: true, cancelRequested: true } : { ok: true };
    });
  }

  /**
   * Attempt n ended (a result, or an error or timeout). The report is stored
   * before the answer, then applied to D1; if D1 fails, the answer is still
   * `ok` (the tracker holds it) and the alarm applies it. A late report (fenced
   * or terminal) is recorded by the service as `run.late_result_discarded`.
   */
  async report(report: AttemptReport): Promise<ReportAnswer> {
    // Nothing over the output cap is stored here, whoever sent it (the consumer checks it first).
    const req = withinOutputCap(report);
    return this.serial(async () => {
      let s = await this.load();
      if (!s) return { ok: false, refusal: "not_found", status: null };
      const same = (p: { attempt: number; kind: string } | null) => p !== null && p.attempt === req.attempt && p.kind === req.kind;
      // The same call again (its answer was lost): already held or applied, a no-op.
      if (same(s.pending)) return { ok: true, applied: false, status: s.status };
      if (same(s.applied)) return { ok: true, applied: true, status: s.status };
      if (s.status !== "running" || s.attempt !== req.attempt) {
        const late = await this.applyReport(s, { ...req, storedAt: Date.now() });
        if (late.ok) {
          // D1 accepted a report this tracker had fenced: impossible while the tracker
          // allocates attempts, but if it happens, follow D1 rather than contradict it.
          await this.save(this.followed(s, late.run));
          return { ok: true, applied: true, status: late.run.status };
        }
        if (late.run) await this.save(this.followed(s, late.run));
        return { ok: false, refusal: late.refusal, status: late.run?.status ?? s.status };
      }
      const pending: PendingReport = { ...req, storedAt: Date.now() };
      s = { ...s, pending, ...(req.progress ? { progress: req.progress } : {}) };
      await this.save(s);
      const applied = await this.applyPending(s);
      await this.save(applied.state);
      // Refused by D1 (the sweep or the dead-letter bridge decided first): a late report.
      if (applied.refusal) return { ok: false, refusal: applied.refusal, status: applied.state.status };
      return { ok: true, applied: applied.state.pending === null, status: applied.state.status };
    });
  }

  private applyReport(s: TrackerState, p: PendingReport): Promise<RunAnswer> {
    const snapshot = this.snapshot ?? undefined;
    const service = this.service();
    if (p.kind === "stopped") {
      return service.cancelStopped(s.runId, p.attempt, {
        how: "stopped",
        actor: "system:consumer",
        ...(p.progress !== undefined ? { progress: p.progress } : {}),
        ...(snapshot ? { snapshot } : {}),
      });
    }
    if (p.kind === "result") {
      return service.complete(
        s.runId,
        p.attempt,
        {
          outcome: p.outcome,
          ...(p.message !== undefined ? { message: p.message } : {}),
          ...(p.progress !== undefined ? { progress: p.progress } : {}),
          ...(p.outputJson !== undefined ? { outputJson: p.outputJson } : {}),
        },
        snapshot,
      );
    }
    return service.failAttempt(
      s.runId,
      p.attempt,
      {
        reason: p.reason,
        retryable: p.retryable,
        error: p.message,
        ...(p.progress !== undefined ? { progress: p.progress } : {}),
        ...(p.retryAfterMs !== undefined ? { retryAfterMs: p.retryAfterMs } : {}),
      },
      snapshot,
    );
  }

  /**
   * Apply the stored report to D1; on failure keep it, with a backoff for the
   * alarm. `refusal` is set when D1 refused it as late (another path decided first).
   */
  private async applyPending(s: TrackerState): Promise<{ state: TrackerState; refusal?: TrackerRefusal }> {
    const p = s.pending;
    if (!p) return { state: s };
    s = await this.flushErrors(s);
    let answer: RunAnswer;
    try {
      answer = await this.applyReport(s, p);
    } catch (error) {
      const failed = this.noteError(s, p.kind === "failure" ? "failure_write" : "result_write", error);
      return { state: { ...failed, failures: s.failures + 1, retryAt: Date.now() + backoffMs(s.failures + 1) } };
    }
    const base: TrackerState = { ...s, pending: null, failures: 0, retryAt: null };
    if (!answer.run) return { state: { ...base, status: "completed", completedAt: Date.now() }, refusal: "not_found" };
    // `duplicate`: D1 had this very report already (an earlier write committed, its answer lost).
    const applied = answer.ok || answer.refusal === "duplicate";
    let next = this.followed(base, answer.run);
    if (applied) next = { ...next, applied: { attempt: p.attempt, kind: p.kind } };
    if (next.status === "queued") next = await this.send(next, false);
    return applied || answer.ok ? { state: next } : { state: next, refusal: answer.refusal };
  }

  /**
   * An operator cancels the run (contract section 7). In this object's order
   * of calls, so a report it already holds wins (it is applied first and the
   * cancel finds the run ended), and a report that comes after ends the run
   * `cancelled`. A queued run ends at once: its dispatch is never claimed
   * (a later claim finds the run terminal) and the alarm only waits to clean
   * up. A running run is Cancelling: its heartbeats are answered with the
   * cancel and the alarm is re-armed at the cancel grace. Twice is harmless:
   * the second finds the cancel requested (or the run ended) and writes nothing.
   */
  async cancel(req: CancelRequest): Promise<CancelAnswer> {
    return this.serial(async () => {
      let s = await this.load();
      const request = { actor: req.actor, ...(req.actorId !== undefined ? { actorId: req.actorId } : {}), reason: req.reason ?? null };
      if (!s) {
        // No tracker holds the run (it could not take it at acceptance): D1 alone decides, and
        // the sweep, which adopts or reconciles such runs, sees the outcome.
        return cancelAnswerOf(await this.service().cancel(req.runId, request));
      }
      if (s.status === "completed") return { result: "terminal" };
      if (s.pending) {
        const applied = await this.applyPending(s);
        s = applied.state;
        await this.save(s);
        if (s.status === "completed") return { result: "terminal" };
        if (s.pending) return { result: "unavailable" };
      }
      let answer: RunAnswer;
      try {
        answer = await this.service().cancel(s.runId, request);
      } catch (error) {
        await this.save(this.noteError(s, "cancel", error));
        throw error;
      }
      if (answer.run) await this.save(this.followed(s, answer.run));
      return cancelAnswerOf(answer);
    });
  }

  /** What the tracker knows, for the sweep to consult before it force-resolves. */
  async status(): Promise<TrackerStatus> {
    return this.serial(async () => {
      const s = await this.load();
      if (!s) return { known: false };
      const policy = policyFor(s.type);
      const now = Date.now();
      return { known: true, state: s, action: alarmAction(s, policy, now), vouches: vouches(s, policy, now) };
    });
  }

  /**
   * The sweep found the run overdue in D1 and this tracker vouches for it:
   * write what the tracker knows so D1's deadline moves — the freshest heartbeat
   * of a live attempt, or the stale deadline of a dispatch in flight. Returns
   * whether D1 changed. Twice is harmless: both writes only move forward.
   */
  async refresh(): Promise<{ refreshed: boolean }> {
    return this.serial(async () => {
      const s = await this.load();
      if (!s || s.status === "completed" || s.pending) return { refreshed: false };
      const policy = policyFor(s.type);
      if (!vouches(s, policy, Date.now())) return { refreshed: false };
      if (s.status === "queued") {
        return { refreshed: await this.service().moveQueuedDeadline(s.runId, s.attempt, staleQueuedAt(s, policy)) };
      }
      if (s.lastHeartbeatAt === null) return { refreshed: false };
      const answer = await this.service().heartbeat({
        runId: s.runId,
        type: s.type,
        attempt: s.attempt,
        ...(s.progress ? { progress: s.progress } : {}),
        force: true,
        at: s.lastHeartbeatAt,
      });
      if (!answer.ok) {
        if (answer.run) await this.save(this.followed(s, answer.run));
        return { refreshed: false };
      }
      this.state = { ...s, lastFlushedAt: s.lastHeartbeatAt };
      await this.ctx.storage.put(STATE_KEY, this.state);
      return { refreshed: answer.flushed };
    });
  }

  /**
   * The dead-letter bridge: the queue gave up on a message of `dispatch`. Only
   * the current, unclaimed dispatch of a live run becomes
   * `queue.max_attempts_exceeded`; anything else (an old dispatch, a copy of one
   * that started an attempt) is ignored. Twice is harmless: the second finds the
   * run terminal.
   */
  async deadLettered(req: DeadLetterRequest): Promise<DeadLetterAnswer> {
    return this.serial(async () => {
      const s = await this.load();
      if (!s) return { bridged: false, why: "not_found" };
      if (s.status === "completed") return { bridged: false, why: "terminal" };
      if (req.dispatch !== null && req.dispatch !== s.dispatch.n) return { bridged: false, why: "not_current" };
      if (s.dispatch.claimed || s.status !== "queued") return { bridged: false, why: "claimed" };
      const answer = await this.service().deadLetter(s.runId, req.evidence);
      if (answer.run) await this.save(this.followed(s, answer.run));
      return answer.ok ? { bridged: true } : { bridged: false, why: "terminal" };
    });
  }

  /**
   * The one alarm, at the earliest deadline. Safe to run twice: each branch
   * re-reads the state and every transition is a compare-and-set in D1, so a
   * second run finds nothing left to do. It never throws: a failing action is
   * recorded and the alarm re-arms itself with backoff (`backoffMs`).
   */
  override async alarm(): Promise<void> {
    await this.serial(async () => {
      const s = await this.load();
      if (!s) return;
      const policy = policyFor(s.type);
      try {
        const next = await this.act(s, policy);
        if (next === null) {
          this.state = null;
          this.snapshot = null;
          await this.ctx.storage.deleteAll();
          return;
        }
        await this.save(next);
      } catch (error) {
        const failures = s.failures + 1;
        const failed = { ...this.noteError(this.state ?? s, "alarm", error), failures, retryAt: Date.now() + backoffMs(failures) };
        await this.save(failed);
      }
    });
  }

  /** One alarm step; `null` = forget the run (cleanup, or the run is gone from D1). */
  private async act(s: TrackerState, policy: LifecyclePolicy): Promise<TrackerState | null> {
    const now = Date.now();
    const action = alarmAction(s, policy, now);
    switch (action.kind) {
      case "wait":
        return s;
      case "cleanup":
        return null;
      case "apply_pending":
        return (await this.applyPending(s)).state;
      case "send":
        return this.send(s, action.resend);
      case "heartbeat_lost": {
        const flushed = await this.flushErrors(s);
        const answer = await this.service().heartbeatLost(
          s.runId,
          s.attempt,
          {
            lastHeartbeatAt: action.lastHeartbeatAt,
            deadline: action.deadline,
            heartbeatTimeoutMs: policy.heartbeatTimeoutMs,
            detectedAt: now,
            dispatch: s.dispatch.n,
          },
          s.progress ?? undefined,
        );
        return this.settle(flushed, answer);
      }
      case "cancel_expired": {
        const flushed = await this.flushErrors(s);
        const answer = await this.service().cancelStopped(s.runId, s.attempt, {
          how: "grace_expired",
          actor: "system:tracker",
          evidence: {
            cancelRequestedAt: s.cancel?.requestedAt ?? null,
            graceEndsAt: action.deadline,
            lastHeartbeatAt: s.lastHeartbeatAt,
            detectedAt: now,
          },
          ...(s.progress ? { progress: s.progress } : {}),
        });
        return this.settle(flushed, answer);
      }
      case "stale_queued": {
        const flushed = await this.flushErrors(s);
        const answer = await this.service().reconcile(s.runId, {
          detector: "tracker_alarm",
          reason: "lifecycle.stale_queued",
          observed: { status: "queued", attempt: s.attempt },
          evidence: {
            dueAt: s.dispatch.dueAt,
            deadline: action.deadline,
            staleQueuedAfterMs: policy.staleQueuedAfterMs,
            dispatch: s.dispatch.n,
            sends: s.dispatch.sends,
            lastSentAt: s.dispatch.sentAt,
            detectedAt: now,
            ...(s.errors.length > 0 ? { sendErrors: s.errors.map((e) => e.message) } : {}),
          },
        });
        return this.settle(flushed, answer);
      }
    }
  }

  private async settle(s: TrackerState, answer: RunAnswer): Promise<TrackerState | null> {
    if (!answer.run) {
      // The run is gone from D1 (retention): nothing left to track.
      log.warn("tracker.run_missing", { runId: s.runId });
      return null;
    }
    const next = { ...this.followed(s, answer.run), failures: 0, retryAt: null };
    return next.status === "queued" ? this.send(next, false) : next;
  }
}
