/**
 * The parts of the Worker's deployment (wrangler.toml) the timing contract
 * reads. `deploymentFromWranglerConfig` maps what wrangler's own config reader
 * returns (`unstable_readConfig`), so nothing re-parses wrangler.toml by hand.
 */
export interface QueueConsumerSettings {
  queue: string;
  maxRetries: number;
  /** Seconds; `null` when the consumer does not set one. */
  retryDelaySeconds: number | null;
  maxBatchTimeoutSeconds: number;
  deadLetterQueue: string | null;
}

export interface DeploymentSettings {
  queueConsumers: QueueConsumerSettings[];
  queueProducers: string[];
  crons: string[];
}

/** Cloudflare's documented consumer defaults, used where wrangler.toml is silent. */
export const QUEUE_DEFAULTS = { maxRetries: 3, maxBatchTimeoutSeconds: 5 } as const;

/** The subset of wrangler's `Config` this module reads (structural, so tests can build one). */
export interface WranglerConfigLike {
  queues?: {
    consumers?: ReadonlyArray<{
      queue: string;
      max_retries?: number | null;
      retry_delay?: number | null;
      max_batch_timeout?: number | null;
      dead_letter_queue?: string | null;
    }>;
    producers?: ReadonlyArray<{ queue: string }>;
  };
  triggers?: { crons?: readonly string[] | null };
}

export function deploymentFromWranglerConfig(config: WranglerConfigLike): DeploymentSettings {
  return {
    queueConsumers: (config.queues?.consumers ?? []).map((c) => ({
      queue: c.queue,
      maxRetries: c.max_retries ?? QUEUE_DEFAULTS.maxRetries,
      retryDelaySeconds: c.retry_delay ?? null,
      maxBatchTimeoutSeconds: c.max_batch_timeout ?? QUEUE_DEFAULTS.maxBatchTimeoutSeconds,
      deadLetterQueue: c.dead_letter_queue ?? null,
    })),
    queueProducers: (config.queues?.producers ?? []).map((p) => p.queue),
    crons: [...(config.triggers?.crons ?? [])],
  };
}
