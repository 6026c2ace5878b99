/**
 * Run creation is rate limited per workspace with the Workers Rate Limiting
 * binding (wrangler.toml `[[ratelimits]]` RUN_CREATION_LIMITER;
 * https://developers.cloudflare.com/workers/runtime-apis/bindings/rate-limit/).
 *
 * Platform facts this relies on (same page): `limit({ key })` answers only
 * `{ success }` — no count and no reset time; `period` is 10 or 60 seconds;
 * counts are kept per Cloudflare location and are eventually consistent, so
 * the limit is a guard against runaway clients, not an exact quota.
 * `wrangler dev` and the Workers tests simulate the binding locally with the
 * configured numbers.
 */
import { log } from "../log";
import { ApiProblem } from "./problem";

/**
 * Seconds a refused client is told to wait (`Retry-After`): one whole window,
 * since the binding does not say when the current one ends. Must equal
 * wrangler.toml's `ratelimits.simple.period` (test/node/rate-limit-config.test.ts).
 */
export const RUN_CREATION_LIMIT_PERIOD_SECONDS = 10;

/** The binding's shape (`RateLimit` in worker-configuration.d.ts), so tests can pass their own. */
export interface RunCreationLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/** 429 with `Retry-After` (RFC 6585 §4; RFC 9110 §10.2.3), as problem+json. */
export function rateLimited(retryAfterSeconds: number): ApiProblem {
  return new ApiProblem(
    429,
    "rate-limited",
    "Too many requests",
    `This workspace is creating runs faster than its limit allows; nothing was created. Retry after ${retryAfterSeconds} s (with the same Idempotency-Key, if you sent one).`,
    { retryAfterSeconds },
  );
}

/**
 * Whether `workspaceId` may create one more run now: one call of the limiter,
 * keyed by the workspace id. A limiter that fails (throws) allows the run and
 * is logged: an outage of the guard must not stop the work it guards.
 */
export async function runCreationAllowed(limiter: RunCreationLimiter, workspaceId: string): Promise<boolean> {
  try {
    return (await limiter.limit({ key: workspaceId })).success;
  } catch (error) {
    log.error("api.rate_limiter_failed", { workspaceId, error });
    return true;
  }
}

/**
 * Throws the 429 unless `workspaceId` may create a run now. A request whose
 * Idempotency-Key already made a run creates nothing, so it is answered as
 * before (the run, or 409 for another request) even over the limit.
 */
export async function requireRunCreationAllowed(
  limiter: RunCreationLimiter,
  service: { getByIdempotencyKey(workspaceId: string, idempotencyKey: string): Promise<object | null> },
  workspaceId: string,
  idempotencyKey: string | null,
): Promise<void> {
  if (await runCreationAllowed(limiter, workspaceId)) return;
  if (idempotencyKey !== null && (await service.getByIdempotencyKey(workspaceId, idempotencyKey)) !== null) return;
  log.info("api.run_creation_limited", { workspaceId });
  throw rateLimited(RUN_CREATION_LIMIT_PERIOD_SECONDS);
}
