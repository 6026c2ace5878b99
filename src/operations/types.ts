import type { z } from "zod";
import type { FinalOutcome, LifecyclePolicy, Progress } from "../lifecycle";

/** What a handler gets besides its input. */
export interface OperationContext {
  runId: string;
  workspaceId: string;
  /** 1-based attempt number, allocated by the run's tracker when the attempt started. */
  attempt: number;
  maxAttempts: number;
  /**
   * Fires at the attempt's timeout, when the tracker fences the attempt, or
   * when an operator cancels the run (contract section 7; the attempt learns of
   * a cancel from its next heartbeat answer, within `heartbeatIntervalMs`).
   * Stop promptly: the run ends `cancelled` when the attempt stops, or after the
   * cancel grace (`cancelGraceFor`) if it does not; work done meanwhile is kept.
   */
  signal: AbortSignal;
  /** Report progress; it travels with the automatic heartbeats. */
  reportProgress(progress: Progress): void;
  /**
   * Fault injection for demo and soak types only: `stopHeartbeats()` makes the
   * attempt look dead to its tracker (as if the isolate had died) while the
   * code keeps running, so the detection paths can be exercised and measured.
   */
  faults: { stopHeartbeats(): void };
}

export interface OperationResult {
  outcome: FinalOutcome;
  /** Operator-safe sentence, shown for failed and partially succeeded runs. */
  message?: string;
  progress?: Progress;
}

/**
 * Errors a handler throws are retried while attempts remain (as in Temporal,
 * BullMQ and Oban). `RetryableError` says so explicitly; `NonRetryableError`
 * fails the run at once with `handler.error`.
 */
export class RetryableError extends Error {
  override name = "RetryableError";
}

export class NonRetryableError extends Error {
  override name = "NonRetryableError";
}

/**
 * Thrown by demo and soak types to simulate what a crash does on the platform
 * (an isolate killed mid-attempt, an exceeded CPU or memory limit): the
 * consumer lets it end the whole invocation, so the queue redelivers the
 * batch's unacked messages and every sibling attempt in it dies too
 * (https://developers.cloudflare.com/queues/configuration/batching-retries/:
 * an invocation that throws retries every message not explicitly acked).
 */
export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
}

export interface OperationDefinition<I = unknown> {
  type: string;
  description: string;
  input: z.ZodType<I>;
  policy: LifecyclePolicy;
  /** A per-run attempt timeout, never above `policy.timeoutMs`. */
  attemptTimeoutMs?: (input: I) => number | undefined;
  handler: (input: I, ctx: OperationContext) => Promise<OperationResult>;
}

/** Identity helper that keeps the input type flowing from schema to handler. */
export function defineOperation<I>(definition: OperationDefinition<I>): OperationDefinition<I> {
  return definition;
}
