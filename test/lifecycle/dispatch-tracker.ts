// The run's tracker (mirrors RunTracker, method by method) for the dispatch
// model's world (dispatch-world.ts): the same order of checks, the same pure
// decisions from src/tracker/state.ts, the same D1 calls (dispatch-d1.ts).
// A send always reaches the queue here; D1 is what fails.
import { DEFAULT_SETTINGS, type LifecycleEvent } from "../../src/lifecycle";
import {
  alarmAction,
  backoffMs,
  nextAlarmAt,
  initialTrackerState,
  nextDispatch,
  staleQueuedAt,
  vouches,
  withError,
  type PendingReport,
  type TrackerState,
} from "../../src/tracker/state";
import { d1Apply, d1ApplyReport, d1Heartbeat, d1MoveQueuedDeadline, onlyD1Down, type D1Run, type RunAnswer } from "./dispatch-d1";
import type { Report, World } from "./dispatch-world";

const { heartbeatFlushIntervalMs } = DEFAULT_SETTINGS;


/** RunTracker.save: persist and re-arm the one alarm at the state's next deadline. */
export function save(w: World, s: TrackerState): void {
  w.tracker = s;
  w.alarmAt = nextAlarmAt(s, w.policy, w.now);
}

/** RunTracker.noteError. */
export function noteError(w: World, s: TrackerState, where: string): TrackerState {
  return { ...s, errors: withError(s.errors, { at: w.now, where, message: "D1 down" }) };
}

/** RunTracker.flushErrors (best effort; no fault is aimed at it). */
export function flushErrors(s: TrackerState): TrackerState {
  return s.errors.length === 0 || s.status === "completed" ? s : { ...s, errors: [] };
}

/** RunTracker.followed: mirror what D1 says, never backwards; a run D1 put back in the queue gets a new dispatch. */
export function followed(w: World, s: TrackerState, run: D1Run): TrackerState {
  if (run.state.status === "completed") {
    return { ...s, status: "completed", attempt: Math.max(s.attempt, run.state.attempt), pending: null, completedAt: run.completedAt ?? w.now };
  }
  if (run.state.attempt < s.attempt) return s;
  if (run.state.status === "running") {
    if (s.status === "running" && run.state.attempt === s.attempt) return s;
    w.tally("tracker_adopted_running");
    return {
      ...s,
      status: "running",
      attempt: run.state.attempt,
      dispatch: { ...s.dispatch, claimed: true },
      lastHeartbeatAt: Math.max(s.lastHeartbeatAt ?? 0, run.lastHeartbeatAt ?? w.now),
      lastFlushedAt: run.lastHeartbeatAt,
    };
  }
  if (s.status === "queued" && run.state.attempt === s.attempt) return s;
  const d1Due = run.deadlineAt !== null ? run.deadlineAt - w.policy.staleQueuedAfterMs : w.now;
  const dueAt = Math.max(d1Due, w.now);
  return { ...s, status: "queued", attempt: run.state.attempt, dispatch: nextDispatch(s, dueAt), pending: null };
}

/** RunTracker.send: the current unclaimed dispatch reaches the queue, delayed until its due time. */
export function send(w: World, s: TrackerState, resend: boolean): TrackerState {
  if (s.status !== "queued" || s.dispatch.claimed) return s;
  const delaySeconds = Math.min(43_200, Math.max(0, Math.ceil((s.dispatch.dueAt - w.now) / 1000)));
  w.queue.push({ n: s.dispatch.n, visibleAt: w.now + delaySeconds * 1000 });
  w.latestSent = Math.max(w.latestSent, s.dispatch.n);
  // Evidence: what the queue was given while the run waited in D1.
  if (w.period && w.d1.state.status === "queued" && w.d1.state.attempt === s.attempt) {
    w.period.sends++;
    w.period.sent.add(s.dispatch.n);
    w.period.firstSentAt ??= w.now;
  }
  w.tally(resend ? "resent" : "sent");
  return { ...s, dispatch: { ...s.dispatch, sends: s.dispatch.sends + 1, sentAt: w.now }, failures: 0, retryAt: null };
}

/** RunTracker.track: store dispatch 1 and send it; idempotent; `adopt` also moves D1's deadline. */
export function track(w: World, req: { attempt: number; dueAt: number; adopt: boolean }): void {
  let s = w.tracker;
  if (!s) {
    s = initialTrackerState({ runId: "run", workspaceId: "ws", type: "demo.work", maxAttempts: w.policy.maxAttempts, attempt: req.attempt, dueAt: req.dueAt });
    save(w, s);
  }
  if (s.status === "queued" && !s.dispatch.claimed && s.dispatch.sends === 0) {
    s = send(w, s, false);
    save(w, s);
  }
  if (req.adopt) {
    try {
      d1MoveQueuedDeadline(w, s.attempt, staleQueuedAt(s, w.policy));
    } catch (error) {
      onlyD1Down(error);
      w.tracker = noteError(w, s, "adopt");
    }
  }
}

/** RunTracker.claim: only the current, unclaimed dispatch of a queued run starts attempt n+1, once. Throws when D1 fails. */
export function claim(w: World, dispatch: number): { ok: true; attempt: number } | { ok: false; refusal: string } {
  let s = w.tracker;
  if (!s) return { ok: false, refusal: "not_found" };
  if (s.status === "completed") return { ok: false, refusal: "terminal" };
  if (dispatch !== s.dispatch.n) return { ok: false, refusal: "stale_dispatch" };
  if (s.dispatch.claimed || s.status !== "queued") return { ok: false, refusal: "duplicate" };
  if (s.attempt >= s.maxAttempts) return { ok: false, refusal: "exhausted" };
  const attempt = s.attempt + 1;
  let answer: RunAnswer;
  try {
    answer = d1Apply(w, { type: "claim", attempt }, { actor: "consumer", dispatch });
  } catch (error) {
    onlyD1Down(error);
    save(w, noteError(w, s, "claim"));
    throw error;
  }
  const run = answer.run;
  const ours = answer.ok || (run !== null && run.state.status === "running" && run.state.attempt === attempt && answer.refusal === "duplicate");
  if (!ours || !run) {
    if (run) save(w, followed(w, s, run));
    return { ok: false, refusal: answer.ok ? "duplicate" : answer.refusal };
  }
  if (!answer.ok) w.tally("claim_adopted_committed");
  s = { ...s, status: "running", attempt, dispatch: { ...s.dispatch, claimed: true }, lastHeartbeatAt: w.now, lastFlushedAt: run.lastHeartbeatAt };
  save(w, flushErrors(s));
  return { ok: true, attempt };
}

/** RunTracker.heartbeat: lands in storage every time, in D1 once per flush interval; no re-arm. */
export function heartbeat(w: World, attempt: number): boolean {
  const s = w.tracker;
  if (!s || s.status === "completed" || s.status !== "running" || s.attempt !== attempt) return false;
  let next: TrackerState = { ...s, lastHeartbeatAt: w.now };
  const due = s.lastFlushedAt === null || w.now - s.lastFlushedAt >= heartbeatFlushIntervalMs;
  if (due && !s.pending) {
    try {
      const flushed = d1Heartbeat(w, attempt, w.now, false);
      if (!flushed.ok) {
        save(w, followed(w, next, flushed.run));
        return false;
      }
      if (flushed.flushed) next = { ...next, lastFlushedAt: w.now };
    } catch (error) {
      onlyD1Down(error);
      next = noteError(w, next, "heartbeat_flush");
    }
  }
  w.tracker = next;
  return true;
}

/** RunTracker.applyPending: apply the stored report; on failure keep it with a backoff for the alarm. */
export function applyPending(w: World, s: TrackerState): TrackerState {
  const p = s.pending;
  if (!p) return s;
  s = flushErrors(s);
  let answer: RunAnswer;
  try {
    answer = d1ApplyReport(w, p);
  } catch (error) {
    onlyD1Down(error);
    const failed = noteError(w, s, "result_write");
    return { ...failed, failures: s.failures + 1, retryAt: w.now + backoffMs(s.failures + 1) };
  }
  const base: TrackerState = { ...s, pending: null, failures: 0, retryAt: null };
  if (!answer.run) return { ...base, status: "completed", completedAt: w.now };
  const applied = answer.ok || answer.refusal === "duplicate";
  if (!answer.ok && applied) w.tally("report_already_committed");
  let next = followed(w, base, answer.run);
  if (applied) next = { ...next, applied: { attempt: p.attempt, kind: p.kind } };
  if (next.status === "queued") next = send(w, next, false);
  return next;
}

/** RunTracker.report: stored before the answer, then applied; a late one goes to D1 to be recorded as discarded. */
export function report(w: World, req: Report): void {
  const s = w.tracker;
  if (!s) return;
  const same = (p: { attempt: number; kind: string } | null) => p !== null && p.attempt === req.attempt && p.kind === req.kind;
  if (same(s.pending) || same(s.applied)) {
    w.tally("report_again_noop");
    return;
  }
  if (s.status !== "running" || s.attempt !== req.attempt) {
    try {
      const late = d1ApplyReport(w, req);
      if (late.run) save(w, followed(w, s, late.run));
    } catch (error) {
      onlyD1Down(error);
      // The consumer retries the call; the report is late either way.
    }
    return;
  }
  // Evidence: the lease holder handed its report over before any verdict.
  const attempt = w.attempts.get(req.attempt);
  if (attempt) attempt.reportHeld = true;
  if (w.terminal === null && w.leaseHolder === req.attempt) {
    w.heldReport = req;
    if (req.kind === "result" && w.promisedOutcome === null) w.promisedOutcome = req.outcome;
  }
  const pending: PendingReport = { ...req, storedAt: w.now };
  const held: TrackerState = { ...s, pending };
  save(w, held);
  save(w, applyPending(w, held));
}

/** RunTracker.settle (after the alarm's own D1 write). */
export function settle(w: World, s: TrackerState, answer: RunAnswer): TrackerState | null {
  if (!answer.run) return null;
  const next = { ...followed(w, s, answer.run), failures: 0, retryAt: null };
  return next.status === "queued" ? send(w, next, false) : next;
}

/** RunTracker.act: one alarm step. */
export function act(w: World, s: TrackerState): TrackerState | null {
  const action = alarmAction(s, w.policy, w.now);
  w.tally(`alarm:${action.kind}`);
  switch (action.kind) {
    case "wait":
      return s;
    case "cleanup":
      return null;
    case "apply_pending":
      return applyPending(w, s);
    case "send":
      return send(w, s, action.resend);
    case "heartbeat_lost":
      return settle(w, flushErrors(s), d1Apply(w, { type: "heartbeat_lost", attempt: s.attempt }, { actor: "tracker" }));
    case "cancel_expired":
      // The model makes no cancels; mirrored so the alarm's cases stay complete.
      return settle(w, flushErrors(s), d1Apply(w, { type: "cancel_stopped", attempt: s.attempt }, { actor: "tracker" }));
    case "stale_queued": {
      const event: LifecycleEvent = {
        type: "reconcile",
        detector: "tracker_alarm",
        reason: "lifecycle.stale_queued",
        observed: { status: "queued", attempt: s.attempt },
      };
      return settle(w, flushErrors(s), d1Apply(w, event, { actor: "tracker_alarm" }));
    }
  }
}

/** RunTracker.alarm: never throws; a failing action re-arms with backoff. */
export function alarm(w: World): void {
  w.alarmOverdue = false;
  const s = w.tracker;
  if (!s) return;
  try {
    const next = act(w, s);
    if (next === null) {
      w.tracker = null;
      w.alarmAt = null;
      return;
    }
    save(w, next);
  } catch (error) {
    onlyD1Down(error);
    const failures = s.failures + 1;
    save(w, { ...noteError(w, w.tracker ?? s, "alarm"), failures, retryAt: w.now + backoffMs(failures) });
  }
}

/** RunTracker.refresh: write what a vouching tracker knows so D1's deadline moves. */
export function refresh(w: World): void {
  const s = w.tracker;
  if (!s || s.status === "completed" || s.pending || !vouches(s, w.policy, w.now)) return;
  if (s.status === "queued") {
    d1MoveQueuedDeadline(w, s.attempt, staleQueuedAt(s, w.policy));
    return;
  }
  if (s.lastHeartbeatAt === null) return;
  const answer = d1Heartbeat(w, s.attempt, s.lastHeartbeatAt, true);
  if (!answer.ok) {
    save(w, followed(w, s, answer.run));
    return;
  }
  w.tracker = { ...s, lastFlushedAt: s.lastHeartbeatAt };
}

/** RunTracker.deadLettered, behind the dead-letter bridge (which goes to D1 itself when no tracker holds the run). */
export function deadLettered(w: World, dispatch: number): void {
  const s = w.tracker;
  if (!s) {
    d1Apply(w, { type: "dead_letter" }, { actor: "dead_letter", dispatch });
    return;
  }
  if (s.status === "completed" || dispatch !== s.dispatch.n || s.dispatch.claimed || s.status !== "queued") {
    w.tally("dead_letter_ignored");
    return;
  }
  const answer = d1Apply(w, { type: "dead_letter" }, { actor: "dead_letter", dispatch });
  if (answer.run) save(w, followed(w, s, answer.run));
}
