/**
 * The transition table of the contract (section 2) as code. `decide` is pure:
 * given the run as last read and an event, it returns the next state and the
 * audit action the winning writer emits, or a typed refusal. Adapters turn a
 * transition into one compare-and-set write guarded by the state it was
 * decided from, so the table here is the only place the rules live.
 */
import type { ExecutionReasonCode, LifecycleReasonCode, ReasonCode } from "./reasons";
import type { Detector, FinalOutcome, RunAuditAction, RunState, RunStatus } from "./states";

export type LifecycleEvent =
  /** The consumer claims attempt n (n = the queue message's delivery count). */
  | { type: "claim"; attempt: number }
  /** Attempt n is alive (and may carry progress). */
  | { type: "heartbeat"; attempt: number }
  /** Attempt n returned a result. */
  | { type: "result"; attempt: number; outcome: FinalOutcome }
  /** Attempt n threw or timed out. */
  | { type: "attempt_failure"; attempt: number; retryable: boolean; reason: ExecutionReasonCode }
  /** The tracker saw attempt n stop heartbeating. */
  | { type: "heartbeat_lost"; attempt: number }
  /** A detector found the run overdue in the state it observed. */
  | {
      type: "reconcile";
      detector: Exclude<Detector, "dead_letter">;
      reason: Extract<LifecycleReasonCode, "lifecycle.stale_queued" | "lifecycle.stale_running">;
      observed: { status: Exclude<RunStatus, "completed">; attempt: number };
    }
  /** The queue gave up on the run's message. */
  | { type: "dead_letter" }
  /** An operator cancels the run (contract section 7). */
  | { type: "cancel" }
  /** The cancelled run's attempt n stopped, or its cancel grace ran out: the cancel completes. */
  | { type: "cancel_stopped"; attempt: number };

export type LifecycleEventType = LifecycleEvent["type"];

/**
 * Why an event changes nothing:
 * - `terminal`: the run is completed, and terminal is forever;
 * - `fenced`: the sender no longer holds the lease (an older attempt, or a
 *   detector whose observation is out of date);
 * - `duplicate`: the same attempt claimed twice (duplicate delivery);
 * - `exhausted`: a claim beyond `maxAttempts` (the tracker never asks for one; a
 *   guard against a caller that does).
 */
export type Refusal = "terminal" | "fenced" | "duplicate" | "exhausted";

export interface Transition {
  ok: true;
  from: RunState;
  to: RunState;
  /** The audit event the winning write emits; `null` for heartbeats. */
  action: Exclude<RunAuditAction, "run.queued" | "run.late_result_discarded" | "run.retried"> | null;
  /** A claim that fenced off a live older attempt. */
  takeover: boolean;
}

export interface Refused {
  ok: false;
  refusal: Refusal;
  /** Set when a result was refused: it is recorded, never applied. */
  action: "run.late_result_discarded" | null;
}

export type Decision = Transition | Refused;

function refuse(refusal: Refusal, event: LifecycleEvent): Refused {
  const isResult = event.type === "result" || event.type === "attempt_failure";
  return { ok: false, refusal, action: isResult ? "run.late_result_discarded" : null };
}

/** The run ended by an operator's cancel: outcome `cancelled`, reason `operator.cancelled` (contract section 3). */
function completeCancelled(from: RunState): RunState {
  return { ...from, status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled", reconciledBy: null, cancelRequested: true };
}

function completeFailed(
  from: RunState,
  reasonCode: ReasonCode,
  reconciledBy: Detector | null,
): RunState {
  return { ...from, status: "completed", outcome: "failed", reasonCode, reconciledBy };
}

/** Decide what `event` does to a run in state `run` (contract section 2). */
export function decide(run: RunState, event: LifecycleEvent): Decision {
  if ("attempt" in event && (!Number.isInteger(event.attempt) || event.attempt < 1)) {
    throw new RangeError(`attempt must be a positive integer, got ${String(event.attempt)}`);
  }
  if (event.type === "reconcile" && (event.reason === "lifecycle.stale_queued") !== (event.observed.status === "queued")) {
    throw new RangeError(`${event.reason} does not describe an observed ${event.observed.status} run`);
  }
  if (run.status === "completed") return refuse("terminal", event);

  const ok = (to: RunState, action: Transition["action"], takeover = false): Transition => ({
    ok: true,
    from: run,
    to,
    action,
    takeover,
  });

  // A cancel was requested while attempt n ran (contract section 7): whatever ends that
  // attempt now — it stops, reports a result or a failure, goes silent, or a detector
  // finds it overdue — ends the run `cancelled`. The operator's request came first
  // (the run's tracker orders both); what the attempt reported stays in the event.
  if (run.cancelRequested && run.status === "running") {
    switch (event.type) {
      case "cancel":
        return refuse("duplicate", event);
      case "claim":
        return refuse("fenced", event);
      case "heartbeat":
        break;
      case "reconcile":
        if (event.observed.status !== "running" || event.observed.attempt !== run.attempt) return refuse("fenced", event);
        return ok(completeCancelled(run), "run.cancelled");
      case "dead_letter":
        return ok(completeCancelled(run), "run.cancelled");
      default:
        if (event.attempt !== run.attempt) return refuse("fenced", event);
        return ok(completeCancelled(run), "run.cancelled");
    }
  }

  switch (event.type) {
    case "cancel":
      // Queued (fresh or waiting for a retry): nothing runs, so it ends at once.
      if (run.status === "queued") return ok(completeCancelled(run), "run.cancelled");
      return ok({ ...run, cancelRequested: true }, "run.cancel_requested");
    case "cancel_stopped":
      // Only a run whose cancel was requested (handled above) can have its cancel complete.
      return refuse("fenced", event);
    case "claim": {
      if (event.attempt < run.attempt) return refuse("fenced", event);
      if (event.attempt === run.attempt) return refuse("duplicate", event);
      if (event.attempt > run.maxAttempts) return refuse("exhausted", event);
      const to: RunState = { ...run, status: "running", attempt: event.attempt };
      return ok(to, "run.attempt_started", run.status === "running");
    }
    case "heartbeat": {
      if (run.status !== "running" || run.attempt !== event.attempt) return refuse("fenced", event);
      return ok(run, null);
    }
    case "result": {
      if (run.status !== "running" || run.attempt !== event.attempt) return refuse("fenced", event);
      const reasonCode = event.outcome === "failed" ? "handler.failed" : null;
      return ok({ ...run, status: "completed", outcome: event.outcome, reasonCode, reconciledBy: null }, "run.completed");
    }
    case "attempt_failure": {
      if (run.status !== "running" || run.attempt !== event.attempt) return refuse("fenced", event);
      if (event.retryable && event.attempt < run.maxAttempts) {
        return ok({ ...run, status: "queued" }, "run.attempt_failed");
      }
      return ok(completeFailed(run, event.reason, null), "run.failed");
    }
    case "heartbeat_lost": {
      if (run.status !== "running" || run.attempt !== event.attempt) return refuse("fenced", event);
      if (event.attempt < run.maxAttempts) return ok({ ...run, status: "queued" }, "run.attempt_lost");
      return ok(completeFailed(run, "lifecycle.heartbeat_lost", "tracker_alarm"), "run.reconciled");
    }
    case "reconcile": {
      if (run.status !== event.observed.status || run.attempt !== event.observed.attempt) {
        return refuse("fenced", event);
      }
      return ok(completeFailed(run, event.reason, event.detector), "run.reconciled");
    }
    case "dead_letter":
      return ok(completeFailed(run, "queue.max_attempts_exceeded", "dead_letter"), "run.reconciled");
  }
}

/** The state of a newly accepted run (attempt 0, queued). */
export function initialState(maxAttempts: number): RunState {
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a positive integer, got ${String(maxAttempts)}`);
  }
  return { status: "queued", outcome: "pending", attempt: 0, maxAttempts, reasonCode: null, reconciledBy: null };
}
