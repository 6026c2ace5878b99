/**
 * The bench Worker's queue entry: production's consumer (and dead-letter
 * bridge) behind counting bindings, and the bare baseline consumer.
 */
import { z } from "zod";
import production from "../../src/index";
import { log } from "../../src/log";
import { bump, counters, instrumentEnv, type BenchEnv } from "./instrument";

export const BARE_QUEUE_NAME = "bench-bare";

/** The baseline consumer: one D1 write per message, then ack. */
const bareMessage = z.object({ id: z.string().min(1), sentAt: z.number() });

async function bareConsumer(batch: MessageBatch<unknown>, env: BenchEnv): Promise<void> {
  await Promise.all(
    batch.messages.map(async (m) => {
      const body = bareMessage.safeParse(m.body);
      if (!body.success) {
        // Only the bench sends here; a malformed message would fail the same way again.
        m.ack();
        return;
      }
      try {
        await env.DB.prepare("INSERT INTO bench_bare (id, sent_at, done_at) VALUES (?, ?, ?) ON CONFLICT (id) DO NOTHING")
          .bind(body.data.id, body.data.sentAt, Date.now())
          .run();
        m.ack();
      } catch (error) {
        log.error("bench.bare_failed", { error });
        m.retry();
      }
    }),
  );
}

/** The batch as the consumer sees it, counting each delivery and each retry asked for. */
export function countingBatch(batch: MessageBatch<unknown>): MessageBatch<unknown> {
  const queue = batch.queue;
  bump(counters.queueDelivered, queue, batch.messages.length);
  const messages = batch.messages.map((m) => {
    let retried = false;
    const retry = (options?: QueueRetryOptions) => {
      if (!retried) bump(counters.queueRetried, queue);
      retried = true;
      m.retry(options);
    };
    return {
      get id() {
        return m.id;
      },
      get timestamp() {
        return m.timestamp;
      },
      get body() {
        return m.body;
      },
      get attempts() {
        return m.attempts;
      },
      ack: () => m.ack(),
      retry,
    } satisfies Message<unknown>;
  });
  return {
    queue,
    messages,
    metadata: batch.metadata,
    ackAll: () => batch.ackAll(),
    retryAll: (options?: QueueRetryOptions) => {
      for (const m of messages) m.retry(options);
    },
  } satisfies MessageBatch<unknown>;
}

export async function benchQueue(batch: MessageBatch<unknown>, env: BenchEnv, ctx?: ExecutionContext): Promise<void> {
  const counted = countingBatch(batch);
  const wrapped = instrumentEnv(env);
  if (batch.queue === BARE_QUEUE_NAME) return bareConsumer(counted, wrapped);
  await production.queue(counted, wrapped, ctx);
}

