/** The three run statuses of the contract (section 1); no other value is ever stored. */
export const RUN_STATUSES = ["queued", "running", "completed"] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** `pending` until completed, then a final outcome: an attempt's three, or an operator's `cancelled`. */
export const OUTCOMES = ["pending", "succeeded", "partially_succeeded", "failed", "cancelled"] as const;
export type Outcome = (typeof OUTCOMES)[number];
/** The outcomes an attempt reports; `cancelled` is an operator's decision (contract section 7), never a handler's. */
export type FinalOutcome = Exclude<Outcome, "pending" | "cancelled">;

/** Which piece of lifecycle machinery decided an outcome the handler could not. */
export const DETECTORS = ["tracker_alarm", "sweep", "dead_letter"] as const;
export type Detector = (typeof DETECTORS)[number];

/** Every audit action the lifecycle writes (contract section 2). */
export const RUN_AUDIT_ACTIONS = [
  "run.queued",
  "run.attempt_started",
  "run.completed",
  "run.attempt_failed",
  "run.failed",
  "run.attempt_lost",
  "run.redispatched",
  "run.reconciled",
  "run.late_result_discarded",
  /** Written on the original when an operator retries it as a new run (contract section 7). */
  "run.retried",
  "run.cancel_requested",
  "run.cancelled",
] as const;
export type RunAuditAction = (typeof RUN_AUDIT_ACTIONS)[number];

/** Progress summary counts reported by handlers and shown by the admin. */
export interface Progress {
  total: number;
  processed: number;
  succeeded: number;
  failed: number;
}

export const EMPTY_PROGRESS: Progress = { total: 0, processed: 0, succeeded: 0, failed: 0 };

/** The part of a run the transition table looks at. */
export interface RunState {
  status: RunStatus;
  outcome: Outcome;
  attempt: number;
  maxAttempts: number;
  reasonCode: import("./reasons").ReasonCode | null;
  reconciledBy: Detector | null;
  /** An operator asked to cancel this (running) run; its attempt is being stopped (contract section 7). */
  cancelRequested?: boolean;
}

export function isTerminal(state: Pick<RunState, "status">): boolean {
  return state.status === "completed";
}
