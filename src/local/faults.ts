/**
 * Fault hooks, for local and test builds only. Nothing in production's entry
 * (src/index.ts) imports this folder; src/index.local.ts installs it. So
 * `wrangler deploy` ships no way to crash a batch on purpose
 * (test/node/deploy.test.ts checks the dry-run bundle for these names).
 */

/**
 * Thrown by demo and soak types to simulate what a crash does on the platform
 * (an isolate killed mid-attempt, an exceeded CPU or memory limit): the
 * consumer lets it end the whole invocation, so the queue redelivers the
 * batch's unacked messages and every sibling attempt in it dies too
 * (https://developers.cloudflare.com/queues/configuration/batching-retries/:
 * an invocation that throws retries every message not explicitly acked).
 * Recognised only once `installLocalBuild()` (./index.ts) has run; in
 * production it would be an ordinary retryable handler error.
 */
export class SimulatedCrash extends Error {
  override name = "SimulatedCrash";
}
