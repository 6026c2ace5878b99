/**
 * Display state (contract section 6): a pure function of the run, its policy
 * and now. A stale run never gets the look of healthy activity.
 */
import type { LifecyclePolicy, LifecycleSettings } from "./policy";
import { reasonFamily, type ReasonCode } from "./reasons";
import type { Detector, Outcome, RunStatus } from "./states";

export const DISPLAY_STATES = [
  "queued",
  "retrying",
  "queued_overdue",
  "running",
  "running_stale",
  "cancelling",
  "succeeded",
  "partially_succeeded",
  "failed",
  "failed_reconciled",
  "cancelled",
] as const;
export type DisplayStateKind = (typeof DISPLAY_STATES)[number];

export interface DisplayState {
  kind: DisplayStateKind;
  /** The words of the contract's table, e.g. "Running · no heartbeat for 42 s". */
  label: string;
  /** Whether this is healthy, live work (queued or retrying in time, and running fresh). */
  live: boolean;
  /** For the stale kinds: how far past the threshold, in ms. */
  overdueByMs?: number;
  /** For `failed_reconciled`: which detector decided. */
  detector?: Detector;
  /**
   * For `retrying`: the attempt that failed or was lost, and when the next
   * one is due (epoch ms; `null` when the run has no stored deadline).
   */
  retry?: { afterAttempt: number; dueAt: number | null };
  /** For `cancelling` and `cancelled`: who asked, as people read it ("owner@acme.test", "API token CI deploy"). */
  cancelledBy?: string;
}

export interface DisplayInput {
  status: RunStatus;
  outcome: Outcome;
  /** The current/last attempt; a queued run with attempt > 0 is waiting for a retry or a re-dispatch. */
  attempt: number;
  reasonCode: ReasonCode | null;
  reconciledBy: Detector | null;
  createdAt: number;
  startedAt: number | null;
  lastHeartbeatAt: number | null;
  /** D1 deadline (queued: when it becomes overdue). */
  deadlineAt: number | null;
  /**
   * The run's own stale-queued threshold in ms (its `diagnostics.thresholds`),
   * when recorded; else the policy's is used. A queued deadline is "due time +
   * staleQueuedAfterMs" (contract section 4), so this recovers the due time.
   */
  staleQueuedAfterMs?: number | null;
  /** When an operator asked to cancel the run (epoch ms), and who (an audit actor); `null` when nobody did. */
  cancelRequestedAt?: number | null;
  cancelRequestedBy?: string | null;
}

/**
 * An audit actor as people read it: `user:<email>` → the email,
 * `api-token:<name>` → "API token <name>", anything else as it is.
 */
export function actorName(actor: string): string {
  if (actor.startsWith("user:")) return actor.slice("user:".length);
  if (actor.startsWith("api-token:")) return `API token ${actor.slice("api-token:".length)}`;
  return actor;
}

/** "42 s", "3 min", "2 h", "5 d": coarse, for labels. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h`;
  return `${Math.floor(h / 24)} d`;
}

const DETECTOR_LABEL: Record<Detector, string> = {
  tracker_alarm: "tracker",
  sweep: "sweep",
  dead_letter: "dead-letter",
};

/**
 * The display state of a run at `now`. A running run's heartbeat in D1 lags
 * by up to one flush interval, so it is stale only once
 * heartbeatTimeoutMs + flush interval have passed since the last flushed one.
 */
export function displayState(
  run: DisplayInput,
  policy: Pick<LifecyclePolicy, "heartbeatTimeoutMs" | "staleQueuedAfterMs"> | null,
  settings: Pick<LifecycleSettings, "heartbeatFlushIntervalMs">,
  now: number,
): DisplayState {
  switch (run.status) {
    case "queued": {
      const threshold = run.staleQueuedAfterMs ?? policy?.staleQueuedAfterMs ?? null;
      const deadline = run.deadlineAt ?? (threshold !== null ? run.createdAt + threshold : null);
      if (deadline !== null && now > deadline) {
        return { kind: "queued_overdue", label: "Queued · overdue", live: false, overdueByMs: now - deadline };
      }
      // Back in the queue after an attempt failed or was lost: waiting work, never fresh work (contract section 6).
      if (run.attempt > 0) {
        const dueAt = run.deadlineAt !== null && threshold !== null ? run.deadlineAt - threshold : null;
        return { kind: "retrying", label: "Retrying", live: true, retry: { afterAttempt: run.attempt, dueAt } };
      }
      return { kind: "queued", label: "Queued", live: true };
    }
    case "running": {
      const last = run.lastHeartbeatAt ?? run.startedAt ?? run.createdAt;
      const silentFor = now - last;
      // With no policy (type removed by a deploy) nothing vouches for liveness.
      const threshold = policy ? policy.heartbeatTimeoutMs + settings.heartbeatFlushIntervalMs : 0;
      const stale = !policy || silentFor > threshold;
      // Cancel requested, the attempt not yet stopped (contract section 6). Its tracker
      // ends it within the cancel grace, so it reads as Cancelling, never as running work.
      if (run.cancelRequestedAt != null) {
        return {
          kind: "cancelling",
          label: "Cancelling",
          live: !stale,
          ...(run.cancelRequestedBy ? { cancelledBy: actorName(run.cancelRequestedBy) } : {}),
        };
      }
      if (stale) {
        return {
          kind: "running_stale",
          label: `Running · no heartbeat for ${formatDuration(silentFor)}`,
          live: false,
          overdueByMs: silentFor - threshold,
        };
      }
      return { kind: "running", label: "Running", live: true };
    }
    case "completed": {
      if (run.outcome === "cancelled") {
        const by = run.cancelRequestedBy ? actorName(run.cancelRequestedBy) : null;
        return by ? { kind: "cancelled", label: `Cancelled by ${by}`, live: false, cancelledBy: by } : { kind: "cancelled", label: "Cancelled", live: false };
      }
      if (run.outcome === "succeeded") return { kind: "succeeded", label: "Succeeded", live: false };
      if (run.outcome === "partially_succeeded") {
        return { kind: "partially_succeeded", label: "Partially succeeded", live: false };
      }
      if (run.reasonCode !== null && reasonFamily(run.reasonCode) === "lifecycle") {
        const detector = run.reconciledBy ?? undefined;
        const by = detector ? ` by ${DETECTOR_LABEL[detector]}` : "";
        return detector
          ? { kind: "failed_reconciled", label: `Failed · reconciled${by}`, live: false, detector }
          : { kind: "failed_reconciled", label: "Failed · reconciled", live: false };
      }
      return { kind: "failed", label: "Failed", live: false };
    }
  }
}
