/**
 * The parts of the Worker's deployment (wrangler.toml) the timing contract
 * and the queue routing read. `deploymentFromWranglerConfig` maps what
 * wrangler's own config reader returns (`unstable_readConfig`), so nothing
 * re-parses wrangler.toml by hand.
 */
export interface QueueConsumerSettings {
  queue: string;
  /** Redeliveries after the first delivery before the message is dead-lettered (or dropped without a DLQ). */
  maxRetries: number;
  /** Seconds; `null` when the consumer does not set one. */
  retryDelaySeconds: number | null;
  /** Messages per batch: one invocation holds them all until its slowest message ends (T5). */
  maxBatchSize: number;
  /** Seconds the queue waits to fill a batch before it delivers a partial one (T5). */
  maxBatchTimeoutSeconds: number;
  deadLetterQueue: string | null;
}

/** A `[[queues.producers]]` entry: the queue and the `env` binding that sends to it. */
export interface QueueProducerSettings {
  queue: string;
  binding: string;
}

export interface DeploymentSettings {
  queueConsumers: QueueConsumerSettings[];
  queueProducers: QueueProducerSettings[];
  crons: string[];
}

/**
 * Cloudflare's documented consumer defaults, used where wrangler.toml is silent
 * (https://developers.cloudflare.com/queues/configuration/configure-queues/#consumer).
 */
export const QUEUE_DEFAULTS = { maxRetries: 3, maxBatchSize: 10, maxBatchTimeoutSeconds: 5 } as const;

/** The subset of wrangler's `Config` this module reads (structural, so tests can build one). */
export interface WranglerConfigLike {
  queues?: {
    consumers?: ReadonlyArray<{
      queue: string;
      max_retries?: number | null;
      retry_delay?: number | null;
      max_batch_size?: number | null;
      max_batch_timeout?: number | null;
      dead_letter_queue?: string | null;
    }>;
    producers?: ReadonlyArray<{ queue?: string; binding: string }>;
  };
  triggers?: { crons?: readonly string[] | null };
}

export function deploymentFromWranglerConfig(config: WranglerConfigLike): DeploymentSettings {
  return {
    queueConsumers: (config.queues?.consumers ?? []).map((c) => ({
      queue: c.queue,
      maxRetries: c.max_retries ?? QUEUE_DEFAULTS.maxRetries,
      retryDelaySeconds: c.retry_delay ?? null,
      maxBatchSize: c.max_batch_size ?? QUEUE_DEFAULTS.maxBatchSize,
      maxBatchTimeoutSeconds: c.max_batch_timeout ?? QUEUE_DEFAULTS.maxBatchTimeoutSeconds,
      deadLetterQueue: c.dead_letter_queue ?? null,
    })),
    // wrangler's type leaves `queue` optional; a producer naming no queue routes nothing.
    queueProducers: (config.queues?.producers ?? []).flatMap((p) => (p.queue ? [{ queue: p.queue, binding: p.binding }] : [])),
    crons: [...(config.triggers?.crons ?? [])],
  };
}
