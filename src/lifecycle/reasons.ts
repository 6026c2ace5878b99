/**
 * Reason codes (contract section 3). Three families the admin must tell apart
 * at a glance: an execution failure is the attempt's own; a lifecycle
 * reconciliation is the machinery deciding because the attempt could not; an
 * operator decision is a person's (a cancel).
 */
export type ReasonFamily = "execution" | "lifecycle" | "operator";

export interface ReasonExplanation {
  family: ReasonFamily;
  /** Short label for badges and lists. */
  title: string;
  /** What happened, in operator terms. */
  whatHappened: string;
  /** What it means for side effects already made by the operation. */
  sideEffects: string;
  /** What the operator should do next. */
  whatToDo: string;
}

export const REASONS = {
  "handler.failed": {
    family: "execution",
    title: "Handler reported failure",
    whatHappened: "The operation ran to the end and reported that it failed.",
    sideEffects: "Work done before the failure was kept; the handler decided what to undo.",
    whatToDo: "Read the failure message, fix the cause in the source data or configuration, then start a new run.",
  },
  "handler.error": {
    family: "execution",
    title: "Handler error",
    whatHappened: "The operation threw an error that was not retryable, or kept throwing until no attempts were left.",
    sideEffects: "The attempt stopped where it threw; some items may have been processed.",
    whatToDo: "Check the original error in diagnostics; start a new run once the cause is fixed.",
  },
  "attempt.timeout": {
    family: "execution",
    title: "Attempt timed out",
    whatHappened: "The last attempt ran longer than its timeout and was aborted; earlier attempts, if any, failed or timed out too.",
    sideEffects: "The attempt was stopped mid-way; items processed before the timeout stay processed.",
    whatToDo: "Check why it ran so long (input size, a slow dependency); split the work, or raise the timeout (the run's own, or the type's within the contract).",
  },
  "input.invalid": {
    family: "execution",
    title: "Input no longer valid",
    whatHappened: "The stored input does not validate against the operation type's current schema.",
    sideEffects: "Nothing ran: the handler was not called.",
    whatToDo: "Start a new run with input that matches the current schema.",
  },
  "operation.unknown_type": {
    family: "execution",
    title: "Unknown operation type",
    whatHappened: "No handler is registered for this type, for example because a deploy removed it.",
    sideEffects: "Nothing ran: there was no handler to call.",
    whatToDo: "Deploy a version that registers the type, or stop starting runs of it.",
  },
  "lifecycle.stale_queued": {
    family: "lifecycle",
    title: "Never started",
    whatHappened: "The run's tracker dispatched it, and re-sent the dispatch, but no consumer started an attempt within its stale threshold.",
    sideEffects: "No attempt ran, so no side effects were made.",
    whatToDo: "Check that the queue has a running consumer and how long its backlog is, then start the run again.",
  },
  "lifecycle.heartbeat_lost": {
    family: "lifecycle",
    title: "Heartbeat lost",
    whatHappened: "The last attempt stopped heartbeating (its worker died or was evicted) and no attempts were left.",
    sideEffects: "The attempt may have made part of its changes before it died; check the target for partial work.",
    whatToDo: "Check the target for partial work, then start a new run; the original error, if any, is in diagnostics.",
  },
  "lifecycle.stale_running": {
    family: "lifecycle",
    title: "Stale while running",
    whatHappened: "The reconciliation sweep found the run marked running with its heartbeat overdue, after its tracker could not resolve it.",
    sideEffects: "The attempt may have made part of its changes; nothing is running for it any more.",
    whatToDo: "Check the target for partial work, then start a new run; see diagnostics for the last heartbeat and thresholds.",
  },
  "queue.max_attempts_exceeded": {
    family: "lifecycle",
    title: "Queue gave up",
    whatHappened: "The queue could not hand the run's current dispatch to a consumer within its delivery attempts and moved it to the dead-letter queue.",
    sideEffects: "Earlier attempts, if any ran, may have made part of their changes.",
    whatToDo: "Check the consumer's errors for this run (diagnostics keeps the last one recorded), fix the cause, then start a new run.",
  },
  "operator.cancelled": {
    family: "operator",
    title: "Cancelled by an operator",
    whatHappened: "An operator cancelled the run; who and why are in its timeline.",
    sideEffects:
      "If an attempt was running, it was told to stop at its next heartbeat; changes it made before it stopped stay made. A run cancelled while queued did not run again.",
    whatToDo: "Nothing, if the cancel was intended. To do the work after all, start a new run.",
  },
} as const satisfies Record<string, ReasonExplanation>;

export type ReasonCode = keyof typeof REASONS;
export type ExecutionReasonCode = {
  [K in ReasonCode]: (typeof REASONS)[K]["family"] extends "execution" ? K : never;
}[ReasonCode];
export type LifecycleReasonCode = {
  [K in ReasonCode]: (typeof REASONS)[K]["family"] extends "lifecycle" ? K : never;
}[ReasonCode];
export type OperatorReasonCode = Exclude<ReasonCode, ExecutionReasonCode | LifecycleReasonCode>;

export const REASON_CODES = Object.keys(REASONS) as ReasonCode[];

export function isReasonCode(value: unknown): value is ReasonCode {
  return typeof value === "string" && Object.hasOwn(REASONS, value);
}

/** The family of a reason code: execution (the attempt's own), lifecycle (the machinery's) or operator (a person's). */
export function reasonFamily(code: ReasonCode): ReasonFamily {
  return REASONS[code].family;
}

/**
 * A run that went back to the queue after an attempt ran (a retry or a lost
 * attempt awaiting redelivery) and then never started again is stale-queued
 * too, but "no attempt ran" would be false for it: earlier attempts ran.
 */
const STALE_QUEUED_AFTER_ATTEMPTS: ReasonExplanation = {
  family: "lifecycle",
  title: "Never restarted",
  whatHappened:
    "The run went back to the queue for another attempt; its tracker dispatched it, and re-sent the dispatch, but no attempt started within its stale threshold.",
  sideEffects: "Earlier attempts ran and may have made part of their changes.",
  whatToDo: "Check the target for partial work and the original error in diagnostics, then start a new run.",
};

/** The operator-facing explanation of a reason code (for a run that has made `attempt` attempts). */
export function explainReason(code: ReasonCode, run: { attempt: number } = { attempt: 0 }): ReasonExplanation {
  if (code === "lifecycle.stale_queued" && run.attempt > 0) return STALE_QUEUED_AFTER_ATTEMPTS;
  return REASONS[code];
}
