/**
 * Webhook delivery settings from `vars`, validated once, with errors naming
 * the variable (as src/config.ts does for the sweep).
 */
import { z } from "zod";
import { ConfigError } from "../config";

const schema = z.object({
  /** First retry delay (s); each further retry doubles it (./schedule.ts). */
  WEBHOOK_RETRY_BASE_SECONDS: z.coerce.number().int().min(1).max(3600).default(5),
  /** Tries per delivery (the first send included) before it is marked failed ("given up"). */
  WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(50).default(15),
  /** How long one try waits for the receiver's answer (ms). */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(1000).max(30_000).default(10_000),
});

export type WebhookConfig = z.infer<typeof schema> & {
  /** Loopback and private targets are accepted (local development only, see ./url.ts). */
  allowPrivateTargets: boolean;
};

/**
 * `APP_ENV` values under which a webhook may target loopback or private
 * addresses. Anything else, an unset or misspelt value included, is treated
 * as production: the safe side.
 */
const LOCAL_ENVS = new Set(["local", "development", "test"]);

/** Throws ConfigError naming the variable when a value is out of range. */
export function webhookConfig(env: Partial<Record<keyof z.infer<typeof schema> | "APP_ENV", unknown>>): WebhookConfig {
  const parsed = schema.safeParse({
    WEBHOOK_RETRY_BASE_SECONDS: env.WEBHOOK_RETRY_BASE_SECONDS,
    WEBHOOK_MAX_ATTEMPTS: env.WEBHOOK_MAX_ATTEMPTS,
    WEBHOOK_TIMEOUT_MS: env.WEBHOOK_TIMEOUT_MS,
  });
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
    throw new ConfigError(`Invalid configuration in wrangler.toml [vars]: ${what}`);
  }
  return { ...parsed.data, allowPrivateTargets: typeof env.APP_ENV === "string" && LOCAL_ENVS.has(env.APP_ENV) };
}
