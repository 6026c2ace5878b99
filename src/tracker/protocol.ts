/** What the tracker answers over RPC (plain, structured-cloneable objects). */
import type { ExecutionReasonCode, FinalOutcome, Progress, Refusal, RunStatus } from "../lifecycle";
import type { RunRecord } from "../runs";
import type { AlarmAction, TrackerState } from "./state";

/**
 * Why the tracker starts nothing or accepts nothing: the core's refusals, plus
 * `not_found` (the tracker holds no state for the run) and `stale_dispatch`
 * (a message of a dispatch older than the current one).
 */
export type TrackerRefusal = Refusal | "not_found" | "stale_dispatch";

/** What the tracker needs to take a newly accepted (or orphaned) queued run. */
export interface TrackRequest {
  runId: string;
  workspaceId: string;
  type: string;
  maxAttempts: number;
  /** The run's attempt as D1 has it (0 for a new run). */
  attempt: number;
  /** When the run became due (epoch ms): its creation for a new run. */
  dueAt: number;
  /** The sweep adopting an orphan: also move D1's deadline to the new dispatch's. */
  adopt?: boolean;
  /**
   * The run as D1 just returned it (the acceptance's insert): the claim decides on
   * it rather than reading the row again. Kept in memory only, never stored.
   */
  snapshot?: RunRecord;
}

/** `sent` is false when the first message is still in the tracker's outbox (its alarm retries it). */
export interface TrackAnswer {
  tracked: boolean;
  dispatch: number;
  sent: boolean;
}

/** What the consumer needs to run an attempt. */
export interface RunTicket {
  runId: string;
  workspaceId: string;
  type: string;
  /** The stored input as JSON text (a recursive JSON type is too deep for RPC typing). */
  inputJson: string;
  /** The attempt this claim started (allocated by the tracker): the fencing token for every later call. */
  attempt: number;
  maxAttempts: number;
  dispatch: number;
  progress: Progress;
}

export type ClaimAnswer = { ok: true; run: RunTicket } | { ok: false; refusal: TrackerRefusal };

/** `cancelRequested`: an operator cancelled the run; the attempt must stop (its AbortSignal fires) and report `stopped`. */
export type HeartbeatReply = { ok: true; cancelRequested?: boolean } | { ok: false; refusal: TrackerRefusal };

/**
 * An attempt's end, as the consumer reports it. `outputJson`: the handler's
 * output as JSON text (at most MAX_OUTPUT_BYTES; text, like `inputJson`, so
 * the RPC types stay shallow).
 */
export type AttemptReport =
  | { kind: "result"; attempt: number; outcome: FinalOutcome; message?: string; progress?: Progress; outputJson?: string }
  | {
      kind: "failure";
      attempt: number;
      reason: ExecutionReasonCode;
      retryable: boolean;
      message: string;
      progress?: Progress;
      /** The handler's delay for the next attempt (ms, `RetryableError.retryAfterMs`); absent: the policy's. */
      retryAfterMs?: number;
    }
  /** The attempt stopped because its run was cancelled. */
  | { kind: "stopped"; attempt: number; progress?: Progress };

/** An operator's cancel, as the run's tracker takes it (contract section 7). */
export interface CancelRequest {
  runId: string;
  /** Who: an audit actor (`user:<email>`, `api-token:<name>`). */
  actor: `user:${string}` | `api-token:${string}`;
  actorId?: string;
  reason?: string | null;
}

/**
 * `cancelled`: the run was queued and is now completed/cancelled.
 * `cancelling`: the run is running; its attempt is told to stop (`already`: a
 * cancel was requested before, nothing new was written). `terminal`: the run
 * had ended; nothing changed. `unavailable`: the tracker holds an attempt's
 * report it could not yet write to D1; nothing changed, try again.
 */
export type CancelAnswer =
  | { result: "cancelled" }
  | { result: "cancelling"; already: boolean }
  | { result: "terminal" }
  | { result: "not_found" }
  | { result: "unavailable" };

/**
 * `ok`: the tracker holds the report (stored before answering) and the message
 * can be acked; `applied` says whether D1 has it already (else the alarm applies
 * it). A refusal means the report was late (fenced or terminal): recorded as
 * `run.late_result_discarded`, nothing changed.
 */
export type ReportAnswer =
  | { ok: true; applied: boolean; status: RunStatus }
  | { ok: false; refusal: TrackerRefusal; status: RunStatus | null };

export type TrackerStatus = { known: false } | { known: true; state: TrackerState; action: AlarmAction; vouches: boolean };

/** The dead-letter bridge's question: the queue gave up on dispatch `dispatch` (null for a v1 message). */
export interface DeadLetterRequest {
  dispatch: number | null;
  evidence: Record<string, unknown>;
}

/** `bridged`: the run was resolved as `queue.max_attempts_exceeded`; otherwise why it was ignored. */
export type DeadLetterAnswer = { bridged: true } | { bridged: false; why: "not_current" | "claimed" | "terminal" | "not_found" };
