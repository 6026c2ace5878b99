/**
 * When a failed webhook try is tried again: exponential backoff with jitter,
 * as receivers of Standard Webhooks senders expect (Svix retries over about a
 * day; with the defaults here, 15 tries span about 23 hours).
 */

/** Cloudflare Queues' longest `delaySeconds` (12 hours): https://developers.cloudflare.com/queues/configuration/batching-retries/#delay-messages */
export const MAX_QUEUE_DELAY_SECONDS = 43_200;

/**
 * Seconds to wait after the `failedTries`-th failed try (1, 2, …):
 * `base × 2^(failedTries − 1)`, scaled by a jitter factor in [0.8, 1.2) so
 * that endpoints failing together do not retry together, then capped at the
 * queue's 12-hour limit. `random` is in [0, 1) (Math.random by default).
 * Throws RangeError for a `failedTries` below 1.
 */
export function retryDelaySeconds(failedTries: number, baseSeconds: number, random: () => number = Math.random): number {
  if (!Number.isInteger(failedTries) || failedTries < 1) throw new RangeError(`failedTries must be a positive integer, got ${failedTries}`);
  const exponential = baseSeconds * 2 ** Math.min(failedTries - 1, 30);
  const jittered = exponential * (0.8 + 0.4 * random());
  return Math.max(1, Math.min(MAX_QUEUE_DELAY_SECONDS, Math.round(jittered)));
}

/** After `tries` tries of which none succeeded: is there another? */
export function hasTriesLeft(tries: number, maxAttempts: number): boolean {
  return tries < maxAttempts;
}
