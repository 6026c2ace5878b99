/**
 * A type's lifecycle policy (contract section 5) and the system-wide settings
 * the timing contract checks it against.
 */
export interface LifecyclePolicy {
  /** An attempt is aborted (attempt.timeout) after this long. */
  timeoutMs: number;
  /** How long an attempt normally takes; must be well under the timeout (T9). */
  expectedRuntimeMs: number;
  /** Attempts heartbeat this often while alive. */
  heartbeatIntervalMs: number;
  /** The tracker declares the attempt lost after this long without a heartbeat. */
  heartbeatTimeoutMs: number;
  /** A queued run no attempt started within this long is stale. */
  staleQueuedAfterMs: number;
  /** The sweep's threshold for a running run, counted from its last flushed heartbeat. */
  staleRunningAfterMs: number;
  /** Attempts in all, first included; the run's tracker allocates them (not the queue's delivery count). */
  maxAttempts: number;
  /** Delay before a retryable failure is tried again (T4). */
  retryDelaySeconds: number;
  /** Name of the queue that carries the type (as in wrangler.toml). */
  queue: string;
}

export interface LifecycleSettings {
  /** Wall-clock limit of a queue consumer invocation (T1). */
  consumerWallClockLimitMs: number;
  /** Head-room kept under that limit for abort, cleanup and the final write (T1). */
  safetyMarginMs: number;
  /**
   * A running run's heartbeat (with its progress and `deadline_at`) reaches D1
   * at most once per this interval (T6). It also sets how long the admin waits
   * before it shows "no heartbeat" (heartbeatTimeoutMs + this), since D1's
   * last heartbeat is at most this old while an attempt lives.
   */
  heartbeatFlushIntervalMs: number;
  /** How far past its deadline the sweep waits, so the tracker normally wins (T6). */
  sweepGraceMs: number;
  /** Slack for queue delivery beyond its batch timeout, retry delay and batch hold (T5). */
  queueMarginMs: number;
  /**
   * Cancel grace, in ms: how long a running attempt has to stop after an
   * operator cancelled its run before the run's tracker ends it `cancelled`
   * anyway (contract section 7: "when the attempt stops or after a grace
   * period, whichever comes first"). The attempt learns of the cancel from its
   * next heartbeat answer, so the grace in force for a type is never under two
   * of its heartbeat intervals (`cancelGraceFor`).
   */
  cancelGraceMs: number;
}

/** Cloudflare Queues limits: 15 min consumer wall clock, 12 h maximum retry delay. */
export const CONSUMER_WALL_CLOCK_LIMIT_MS = 15 * 60_000;
export const MAX_RETRY_DELAY_SECONDS = 43_200;

/**
 * How long (ms) a retryable failure waits before its next attempt: the
 * handler's hint (`RetryableError.retryAfterMs`, e.g. an upstream's
 * Retry-After) where it gave a usable one, else the policy's
 * `retryDelaySeconds`; never below 0 or above MAX_RETRY_DELAY_SECONDS (the
 * tracker sends the next dispatch with that delay, which a queue caps there).
 */
export function retryDelayMs(policy: Pick<LifecyclePolicy, "retryDelaySeconds">, hintMs?: number): number {
  const ms = hintMs !== undefined && Number.isFinite(hintMs) ? hintMs : policy.retryDelaySeconds * 1000;
  return Math.min(MAX_RETRY_DELAY_SECONDS * 1000, Math.max(0, Math.ceil(ms)));
}

export const DEFAULT_SETTINGS: LifecycleSettings = {
  consumerWallClockLimitMs: CONSUMER_WALL_CLOCK_LIMIT_MS,
  safetyMarginMs: 30_000,
  // 30 s: two flushes a minute, two rows written each (the row and its deadline index entry),
  // so a heartbeating attempt costs D1 4 rows a minute (issue 12; BENCHMARKS.md figure 4). The
  // tracker detects a dead attempt on its own clock within heartbeatTimeoutMs, whatever this is;
  // D1 is only the sweep's backstop and the admin's view.
  heartbeatFlushIntervalMs: 30_000,
  sweepGraceMs: 15_000,
  queueMarginMs: 10_000,
  cancelGraceMs: 30_000,
};

/**
 * The cancel grace in force for a type, in ms: the setting, but at least two
 * heartbeat intervals, so an attempt that is alive always hears of the cancel
 * (its next heartbeat answer) and has an interval left to stop and report.
 */
export function cancelGraceFor(policy: Pick<LifecyclePolicy, "heartbeatIntervalMs">, settings: Pick<LifecycleSettings, "cancelGraceMs">): number {
  return Math.max(settings.cancelGraceMs, 2 * policy.heartbeatIntervalMs);
}
