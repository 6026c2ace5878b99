/**
 * Runtime settings from `vars`, validated once. A bad value refuses to run
 * with an error naming the variable, rather than sweeping or purging on a
 * number nobody meant.
 */
import { z } from "zod";

const schema = z.object({
  RETENTION_DAYS: z.coerce.number().int().min(1).max(3650).default(30),
  SWEEP_BATCH_SIZE: z.coerce.number().int().min(1).max(500).default(50),
  SWEEP_BUDGET_MS: z.coerce.number().int().min(1000).max(600_000).default(20_000),
});

export type RuntimeConfig = z.infer<typeof schema>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

export function runtimeConfig(env: Partial<Record<keyof RuntimeConfig, unknown>>): RuntimeConfig {
  const parsed = schema.safeParse({
    RETENTION_DAYS: env.RETENTION_DAYS,
    SWEEP_BATCH_SIZE: env.SWEEP_BATCH_SIZE,
    SWEEP_BUDGET_MS: env.SWEEP_BUDGET_MS,
  });
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`Invalid configuration in wrangler.toml [vars]: ${what}`);
  }
  return parsed.data;
}
