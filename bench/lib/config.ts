/**
 * The bench Worker must run production's configuration: every setting the
 * timing contract or the measured paths depend on (the operations queue and
 * its dead-letter queue, the cron, the sweep and retention vars, the
 * compatibility date and flags) is compared with wrangler.toml, both read by
 * wrangler's own config reader. The bench may only add (its bare queue).
 */
import { isDeepStrictEqual } from "node:util";
import { WRANGLER_TOML } from "../../scripts/lib/project";
import { BENCH_CONFIG, SOAK_CONFIG } from "./dev";

/**
 * Throws naming every difference. The soak's config may differ in exactly one
 * setting, the operations queue's max_batch_size (see bench/wrangler.soak.toml).
 */
export async function assertBenchConfigMatchesProduction(configPath: string = BENCH_CONFIG): Promise<void> {
  const { unstable_readConfig } = await import("wrangler");
  const prod = unstable_readConfig({ config: WRANGLER_TOML });
  const bench = unstable_readConfig({ config: configPath });
  const allowBatchSize = configPath === SOAK_CONFIG;
  const pick = (c: typeof prod) => ({
    compatibility_date: c.compatibility_date,
    compatibility_flags: c.compatibility_flags,
    crons: c.triggers.crons,
    consumers: (c.queues.consumers ?? [])
      .filter((q: { queue: string }) => q.queue !== "bench-bare")
      .map((q: { queue: string; max_batch_size?: number }) =>
        allowBatchSize && q.queue === "operations" ? { ...q, max_batch_size: "(soak: may differ)" } : q,
      ),
    producers: (c.queues.producers ?? []).filter((q: { queue: string }) => q.queue !== "bench-bare"),
    vars: Object.fromEntries(
      ["RETENTION_DAYS", "SWEEP_BATCH_SIZE", "SWEEP_BUDGET_MS"].map((k) => [k, (c.vars as Record<string, unknown>)[k]]),
    ),
    durableObjects: c.durable_objects.bindings,
  });
  const a = pick(prod);
  const b = pick(bench);
  const differs = Object.keys(a).filter((k) => !isDeepStrictEqual(a[k as keyof typeof a], b[k as keyof typeof b]));
  if (differs.length > 0) {
    throw new Error(
      `${configPath} differs from wrangler.toml in: ${differs.join(", ")}. ` +
        "The benchmarks must measure production's configuration; update the bench config.",
    );
  }
}
