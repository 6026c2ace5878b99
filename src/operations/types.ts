import type { z } from "zod";
import type { FinalOutcome, LifecyclePolicy, Progress } from "../lifecycle";

/** What a handler gets besides its input. */
export interface OperationContext {
  runId: string;
  workspaceId: string;
  /** 1-based attempt number, allocated by the run's tracker when the attempt started. */
  attempt: number;
  maxAttempts: number;
  /** Fires at the attempt's timeout or when the tracker fences the attempt. */
  signal: AbortSignal;
  /** Report progress; it travels with the automatic heartbeats. */
  reportProgress(progress: Progress): void;
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
