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
  /**
   * What the run produced, for the application that started it (a count, a
   * download URL, an id): any value `JSON.stringify` can serialise, at most
   * MAX_OUTPUT_BYTES (64 KiB) as JSON. Stored with a `succeeded` or
   * `partially_succeeded` outcome and ignored with `failed`. A value JSON
   * cannot hold (a BigInt, a cycle) or one over the limit fails the attempt
   * with `handler.error`, not retried: the same code would return it again.
   * Typed `unknown` rather than a JSON type so a handler can return its own
   * interfaces; the check is made when the attempt ends. Everyone who can
   * read the run sees it (API and admin): return no secrets in it.
   */
  output?: unknown;
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
