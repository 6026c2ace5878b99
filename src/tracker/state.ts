/**
 * The tracker's view of one run and the pure decision its alarm makes (contract
 * v2 section 4). Kept apart from the Durable Object so the rules are plain,
 * unit-testable code: the object only loads, decides, acts and saves.
 */
import type { AttemptReport, TrackRequest } from "./protocol";
import { cancelGraceFor, DEFAULT_SETTINGS, heartbeatDeadline, type ExecutionReasonCode, type FinalOutcome, type LifecyclePolicy, type Progress, type RunStatus } from "../lifecycle";

/** The version of the stored shape; `upgradeState` reads older ones deliberately. */
export const TRACKER_STATE_VERSION = 2;

/**
 * The tracker's current dispatch: one request to the queue for an attempt to
 * run. Its number only grows; a retry or a lost attempt makes a new one.
 */
export interface Dispatch {
  /** The dispatch number carried by its queue messages. */
  n: number;
  /** When the attempt it asks for is due (epoch ms): acceptance, the retry's due time, or the loss. */
  dueAt: number;
  /** A consumer presented it and an attempt started: later copies start nothing. */
  claimed: boolean;
  /** How many times it reached the queue (the first send and the re-sends). 0 = still in the outbox. */
  sends: number;
  /** When it last reached the queue (epoch ms). */
  sentAt: number | null;
  /**
   * How many of its sends the queue refused (optional: a state stored before it
   * existed reads as 0, no version bump).
   */
  refused?: number;
}

/**
 * An attempt's result or failure, stored before it is applied to D1 (contract
 * section 4). A result's `outputJson` (optional: states stored before outputs
 * existed read the same) is at most MAX_OUTPUT_BYTES, checked before it is stored;
 * a failure's `retryAfterMs` is optional too, so a state stored before it
 * existed reads as "the policy's delay" (no version bump).
 */
export type PendingReport = AttemptReport & { storedAt: number };

/** An error raised outside the handler, kept until it is recorded on the run. */
export interface TrackerError {
  at: number;
  where: string;
  message: string;
}

export interface TrackerState {
  v: typeof TRACKER_STATE_VERSION;
  runId: string;
  workspaceId: string;
  type: string;
  status: RunStatus;
  /** The lease: the last attempt this tracker allocated (0 before the first). The fencing token. */
  attempt: number;
  maxAttempts: number;
  dispatch: Dispatch;
  /** Every heartbeat lands here (D1 gets one per flush interval). */
  lastHeartbeatAt: number | null;
  /** When a heartbeat last reached D1. */
  lastFlushedAt: number | null;
  progress: Progress | null;
  /** A report not yet applied to D1 (its alarm applies it). */
  pending: PendingReport | null;
  /** The attempt whose report was applied last: a retry of that same call is a no-op, not a late result. */
  applied: { attempt: number; kind: PendingReport["kind"] } | null;
  /** Errors outside the handler not yet recorded on the run (newest last, capped). */
  errors: TrackerError[];
  /** Consecutive failures of the alarm's action; the next try waits `backoffMs(failures)`. */
  failures: number;
  /** No action before this time after a failure (epoch ms); `null` when none failed. */
  retryAt: number | null;
  completedAt: number | null;
  /**
   * An operator's cancel of the running attempt (contract section 7): its
   * heartbeats are answered with the cancel, and the alarm ends the run after
   * the cancel grace. Absent in states stored before cancel existed (= null).
   */
  cancel?: { requestedAt: number; by: string } | null;
}

/**
 * The state of a tracker taking a queued run (at acceptance, or adopting an
 * orphan): dispatch 1, due at `dueAt`, not yet sent (in the outbox).
 */
export function initialTrackerState(req: Omit<TrackRequest, "adopt">): TrackerState {
  return {
    v: TRACKER_STATE_VERSION,
    runId: req.runId,
    workspaceId: req.workspaceId,
    type: req.type,
    status: "queued",
    attempt: req.attempt,
    maxAttempts: req.maxAttempts,
    dispatch: { n: 1, dueAt: req.dueAt, claimed: false, sends: 0, sentAt: null },
    lastHeartbeatAt: null,
    lastFlushedAt: null,
    progress: null,
    pending: null,
    applied: null,
    errors: [],
    failures: 0,
    retryAt: null,
    completedAt: null,
  };
}

/** How long a tracker keeps a terminal run's state, to answer late calls without D1. */
export const TRACKER_RETENTION_MS = 15 * 60_000;

/** Unclaimed dispatches are re-sent at 1/3 and 2/3 of the stale threshold (after their due time), then declared stale. */
export const MAX_SENDS = 3;

/** Errors kept on the tracker until recorded on the run. */
export const MAX_TRACKER_ERRORS = 5;

/**
 * Backoff after the alarm's action failed: 1 s, 2 s, 4 s … capped at 60 s. The
 * alarm re-arms itself with it rather than relying on the platform's bounded
 * alarm retries (https://developers.cloudflare.com/durable-objects/api/alarms/:
 * a throwing alarm is retried up to 6 times, then never again).
 */
export function backoffMs(failures: number): number {
  return Math.min(60_000, 1_000 * 2 ** Math.max(0, failures - 1));
}

export type AlarmAction =
  | { kind: "wait"; until: number }
  /** Apply the stored report to D1. */
  | { kind: "apply_pending" }
  /** Send the current dispatch: never sent (outbox), or unclaimed and due for a re-send. */
  | { kind: "send"; resend: boolean }
  | { kind: "heartbeat_lost"; lastHeartbeatAt: number; deadline: number }
  | { kind: "stale_queued"; deadline: number }
  /** A Cancelling attempt did not stop within the cancel grace: the run ends `cancelled`. */
  | { kind: "cancel_expired"; deadline: number }
  | { kind: "cleanup" };

type AlarmPolicy = Pick<LifecyclePolicy, "heartbeatTimeoutMs" | "staleQueuedAfterMs"> & Partial<Pick<LifecyclePolicy, "heartbeatIntervalMs">>;

/** When a Cancelling attempt's cancel grace runs out (epoch ms). */
export function cancelGraceEndsAt(cancel: { requestedAt: number }, policy: AlarmPolicy): number {
  return cancel.requestedAt + cancelGraceFor({ heartbeatIntervalMs: policy.heartbeatIntervalMs ?? 0 }, DEFAULT_SETTINGS);
}

/** When an unclaimed dispatch that reached the queue `sends` times is re-sent. */
export function resendAt(d: Dispatch, policy: Pick<LifecyclePolicy, "staleQueuedAfterMs">): number {
  return d.dueAt + Math.floor((policy.staleQueuedAfterMs * d.sends) / MAX_SENDS);
}

/** When a queued run whose dispatch nobody claimed becomes `lifecycle.stale_queued`. */
export function staleQueuedAt(s: Pick<TrackerState, "dispatch">, policy: Pick<LifecyclePolicy, "staleQueuedAfterMs">): number {
  return s.dispatch.dueAt + policy.staleQueuedAfterMs;
}

/** What the alarm should do at `now`; `wait` carries the next time it must fire. */
export function alarmAction(s: TrackerState, policy: AlarmPolicy, now: number): AlarmAction {
  if (s.status === "completed") {
    const until = (s.completedAt ?? now) + TRACKER_RETENTION_MS;
    return now >= until ? { kind: "cleanup" } : { kind: "wait", until };
  }
  if (s.retryAt !== null && now < s.retryAt) return { kind: "wait", until: s.retryAt };
  if (s.pending) return { kind: "apply_pending" };
  if (s.status === "running") {
    const last = s.lastHeartbeatAt ?? s.dispatch.dueAt;
    const deadline = heartbeatDeadline(last, policy);
    if (s.cancel) {
      // Cancelling: the run ends at the cancel grace, or earlier if the attempt goes silent
      // (then heartbeat_lost, which ends a Cancelling run `cancelled` too).
      const graceEnds = cancelGraceEndsAt(s.cancel, policy);
      if (graceEnds <= deadline) return now >= graceEnds ? { kind: "cancel_expired", deadline: graceEnds } : { kind: "wait", until: graceEnds };
    }
    return now >= deadline ? { kind: "heartbeat_lost", lastHeartbeatAt: last, deadline } : { kind: "wait", until: deadline };
  }
  // queued
  const stale = staleQueuedAt(s, policy);
  const d = s.dispatch;
  if (d.sends === 0) {
    // Never reached the queue. If the queue refused it MAX_SENDS times, the verdict comes at
    // the stale time, with the refused sends as evidence, so the run ends within a known
    // bound. If it was never even tried (the alarm held past the stale time, or busy with a
    // D1 that refused), it is sent first: a run is never stale_queued for a dispatch that
    // did not get its sends (contract section 4; found by test/lifecycle/transitions.property.test.ts).
    return now >= stale && (d.refused ?? 0) >= MAX_SENDS ? { kind: "stale_queued", deadline: stale } : { kind: "send", resend: false };
  }
  // Re-sent before any verdict, even when the alarm fires late (the platform may run
  // it after the stale time): every send gets its share of the threshold.
  if (d.sends < MAX_SENDS) {
    const at = resendAt(d, policy);
    return now >= at ? { kind: "send", resend: true } : { kind: "wait", until: at };
  }
  const verdictAt = staleVerdictAt(s, policy);
  return now >= verdictAt ? { kind: "stale_queued", deadline: verdictAt } : { kind: "wait", until: verdictAt };
}

/**
 * When a dispatch sent MAX_SENDS times and still unclaimed becomes
 * `lifecycle.stale_queued`: its stale time, or a third of the threshold after
 * its last send if that came late.
 */
export function staleVerdictAt(s: Pick<TrackerState, "dispatch">, policy: Pick<LifecyclePolicy, "staleQueuedAfterMs">): number {
  const lastSend = s.dispatch.sentAt ?? s.dispatch.dueAt;
  return Math.max(staleQueuedAt(s, policy), lastSend + Math.floor(policy.staleQueuedAfterMs / MAX_SENDS));
}

/** The next time the alarm must fire for this state. */
export function nextAlarmAt(s: TrackerState, policy: AlarmPolicy, now: number): number {
  const a = alarmAction(s, policy, now);
  return a.kind === "wait" ? a.until : now;
}

/** Is the run live by the tracker's own clock (for the sweep: a vouching tracker is believed)? */
export function vouches(s: TrackerState, policy: AlarmPolicy, now: number): boolean {
  if (s.status === "completed") return false;
  if (s.pending) return true;
  const a = alarmAction({ ...s, retryAt: null }, policy, now);
  return a.kind === "wait" || a.kind === "send";
}

/** A new dispatch after an attempt ended without a verdict (retry or loss): due at `dueAt`, not yet sent. */
export function nextDispatch(s: Pick<TrackerState, "dispatch">, dueAt: number): Dispatch {
  return { n: s.dispatch.n + 1, dueAt, claimed: false, sends: 0, sentAt: null };
}

/** Append an error (capped to the newest few). */
export function withError(errors: readonly TrackerError[], e: TrackerError): TrackerError[] {
  return [...errors, e].slice(-MAX_TRACKER_ERRORS);
}

/** The v1 shape (before the dispatch model), still found in the storage of runs accepted before it. */
interface TrackerStateV1 {
  runId: string;
  type: string;
  status: RunStatus;
  attempt: number;
  lastHeartbeatAt: number | null;
  lastFlushedAt: number | null;
  progress: Progress | null;
  queuedSince: number;
  completedAt: number | null;
}

/**
 * Read a stored state of any version. A v1 state (runs accepted before the
 * dispatch model) becomes a v2 state whose dispatch 1 was sent at `queuedSince`
 * — its v1 queue message, which carries no dispatch number, still claims it —
 * and whose workspace and attempt budget come from the run's D1 record.
 */
export function upgradeState(stored: unknown, run: { workspaceId: string; maxAttempts: number } | null): TrackerState | null {
  if (stored === null || typeof stored !== "object") return null;
  if ((stored as { v?: unknown }).v === TRACKER_STATE_VERSION) return stored as TrackerState;
  const old = stored as TrackerStateV1;
  if (!run) return null;
  return {
    v: TRACKER_STATE_VERSION,
    runId: old.runId,
    workspaceId: run.workspaceId,
    type: old.type,
    status: old.status,
    attempt: old.attempt,
    maxAttempts: run.maxAttempts,
    dispatch: { n: 1, dueAt: old.queuedSince, claimed: old.status !== "queued", sends: 1, sentAt: old.queuedSince },
    lastHeartbeatAt: old.lastHeartbeatAt,
    lastFlushedAt: old.lastFlushedAt,
    progress: old.progress,
    pending: null,
    applied: null,
    errors: [],
    failures: 0,
    retryAt: null,
    completedAt: old.completedAt,
  };
}
