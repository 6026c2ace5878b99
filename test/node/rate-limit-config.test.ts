/**
 * The run-creation limiter's `Retry-After` (src/api/rate-limit.ts) is one
 * window of the binding wrangler.toml declares: the binding cannot tell the
 * Worker its period, so the constant is checked against the config here,
 * read by wrangler's own reader (the one `wrangler deploy` uses).
 */
import { describe, expect, it } from "vitest";
import { RUN_CREATION_LIMIT_PERIOD_SECONDS } from "../../src/api/rate-limit";
import { WRANGLER_TOML } from "../../scripts/lib/project";

describe("the run-creation rate limit in wrangler.toml", () => {
  it("is one RUN_CREATION_LIMITER binding whose period is RUN_CREATION_LIMIT_PERIOD_SECONDS", async () => {
    const { unstable_readConfig } = await import("wrangler");
    const config = unstable_readConfig({ config: WRANGLER_TOML });
    const limiters = (config.ratelimits as Array<{ name: string; simple: { limit: number; period: number } }>).filter((r) => r.name === "RUN_CREATION_LIMITER");
    expect(limiters).toHaveLength(1);
    expect(limiters[0]!.simple.period).toBe(RUN_CREATION_LIMIT_PERIOD_SECONDS);
    expect(limiters[0]!.simple.limit).toBeGreaterThan(0);
  });
});
