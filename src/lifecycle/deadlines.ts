/**
 * Deadlines (contract section 4). The D1 `deadline_at` is what the sweep
 * reads; the tracker's deadline is its own, tighter one for a running attempt.
 */
import type { LifecyclePolicy } from "./policy";
import type { RunStatus } from "./states";

export interface DeadlineInput {
  status: RunStatus;
  /** For a queued run: when it became (or becomes) due — creation or the retry's due time. */
  queuedSince: number;
  /** For a running run: the last heartbeat that reached D1 (or the start). */
  lastFlushedHeartbeatAt: number | null;
}

/** The D1 `deadline_at` of a run: when the sweep may consider it overdue. `null` once completed. */
export function storedDeadline(run: DeadlineInput, policy: Pick<LifecyclePolicy, "staleQueuedAfterMs" | "staleRunningAfterMs">): number | null {
  switch (run.status) {
    case "queued":
      return run.queuedSince + policy.staleQueuedAfterMs;
    case "running":
      return (run.lastFlushedHeartbeatAt ?? run.queuedSince) + policy.staleRunningAfterMs;
    case "completed":
      return null;
  }
}

/** The tracker's deadline for a live attempt: last heartbeat + heartbeatTimeoutMs. */
export function heartbeatDeadline(lastHeartbeatAt: number, policy: Pick<LifecyclePolicy, "heartbeatTimeoutMs">): number {
  return lastHeartbeatAt + policy.heartbeatTimeoutMs;
}
