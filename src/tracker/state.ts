/**
 * The tracker's view of one run and the pure decision its alarm makes. Kept
 * apart from the Durable Object so the rules are plain, unit-testable code.
 */
import { heartbeatDeadline, type LifecyclePolicy, type Progress, type RunStatus } from "../lifecycle";

export interface TrackerState {
  runId: string;
  type: string;
  status: RunStatus;
  /** The lease: the attempt that may heartbeat and report a result. */
  attempt: number;
  /** Every heartbeat lands here (D1 gets one per flush interval). */
  lastHeartbeatAt: number | null;
  /** When a heartbeat last reached D1. */
  lastFlushedAt: number | null;
  progress: Progress | null;
  /** When the run became (or becomes) due in the queue: creation or the retry's due time. */
  queuedSince: number;
  completedAt: number | null;
}

/** How long a tracker keeps a terminal run's state, to answer late calls without D1. */
export const TRACKER_RETENTION_MS = 15 * 60_000;

export type AlarmAction =
  | { kind: "wait"; until: number }
  | { kind: "heartbeat_lost"; lastHeartbeatAt: number; deadline: number }
  | { kind: "stale_queued"; deadline: number }
  | { kind: "cleanup" };

/** What the alarm should do at `now`; `wait` carries the next deadline. */
export function alarmAction(
  s: TrackerState,
  policy: Pick<LifecyclePolicy, "heartbeatTimeoutMs" | "staleQueuedAfterMs">,
  now: number,
): AlarmAction {
  switch (s.status) {
    case "running": {
      const last = s.lastHeartbeatAt ?? s.queuedSince;
      const deadline = heartbeatDeadline(last, policy);
      return now >= deadline ? { kind: "heartbeat_lost", lastHeartbeatAt: last, deadline } : { kind: "wait", until: deadline };
    }
    case "queued": {
      const deadline = s.queuedSince + policy.staleQueuedAfterMs;
      return now >= deadline ? { kind: "stale_queued", deadline } : { kind: "wait", until: deadline };
    }
    case "completed": {
      const until = (s.completedAt ?? now) + TRACKER_RETENTION_MS;
      return now >= until ? { kind: "cleanup" } : { kind: "wait", until };
    }
  }
}

/** The next time the alarm must fire for this state. */
export function nextAlarmAt(s: TrackerState, policy: Pick<LifecyclePolicy, "heartbeatTimeoutMs" | "staleQueuedAfterMs">, now: number): number {
  const a = alarmAction(s, policy, now);
  return a.kind === "wait" ? a.until : now;
}
