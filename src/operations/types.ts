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
  /**
   * The Worker's bindings (D1, R2, KV, service bindings, vars and secrets, as
   * declared in wrangler.toml and typed by `npm run types`): the same object the
   * queue consumer was invoked with. `import { env } from "cloudflare:workers"`
   * gives the same values; this one is what a test can replace per attempt.
   */
  env: Env;
  /** Report progress; it travels with the automatic heartbeats. */
  reportProgress(progress: Progress): void;
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
  /**
   * Wait this long (ms) before the next attempt instead of the policy's
   * `retryDelaySeconds`: e.g. an upstream's `Retry-After`. Clamped to 0–43,200 s
   * (the longest delay a queue message can carry, as T4); `undefined`: the policy's delay.
   */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options?: ErrorOptions & { retryAfterMs?: number }) {
    super(message, options);
    this.retryAfterMs = options?.retryAfterMs;
  }
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

/**
 * Any definition, its input type erased: what a list of types holds. `any`,
 * not `unknown`: a handler takes its input contravariantly, so a
 * `(input: DemoWorkInput) => …` handler is not a `(input: unknown) => …` one,
 * and a list of different types would not type-check. The registry only ever
 * hands a handler the output of its own schema.
 */
export type AnyOperationDefinition = OperationDefinition<any>;

/** Identity helper that keeps the input type flowing from schema to handler. */
export function defineOperation<I>(definition: OperationDefinition<I>): OperationDefinition<I> {
  return definition;
}
