/**
 * The Worker's queue entry, routed by the batch's queue (src/queue/routing.ts):
 * a queue that carries a registered type goes to the operations consumer, its
 * dead-letter queue to the dead-letter bridge, and anything else is not ours.
 *
 * An application that consumes its own queues in the same Worker composes it:
 *
 *   async queue(batch, env, ctx) {
 *     if (await handleQueue(batch, env, ctx)) return;
 *     await handleMyQueue(batch, env);
 *   }
 */
import { log } from "../log";
import { handleOperationsBatch } from "./consumer";
import { handleDeadLetterBatch } from "./dead-letter";
import { handleWebhooksBatch } from "../webhooks/consumer";
import { queueRole } from "./routing";

/**
 * Handle a batch if its queue is one of ours. Resolves `true` once it was
 * handled, `false` (touching no message) for a foreign queue, so the caller
 * can hand the batch on. Rejects when the handler throws (the platform then
 * redelivers the batch).
 */
export async function handleQueue(batch: MessageBatch<unknown>, env: Env, _ctx?: ExecutionContext): Promise<boolean> {
  switch (queueRole(batch.queue)) {
    case "operations":
      await handleOperationsBatch(batch, env);
      return true;
    case "dead_letter":
      await handleDeadLetterBatch(batch, env);
      return true;
    case "webhooks":
      await handleWebhooksBatch(batch, env);
      return true;
    case "foreign":
      return false;
  }
}

/**
 * For a batch nobody in this Worker handles: its messages are an application's,
 * not malformed runs, so they are neither acked nor recorded. They are retried,
 * and the queue's own max_retries and dead-letter settings decide their fate;
 * the log line says that wrangler.toml routes a queue here that no code reads.
 */
export function refuseForeignBatch(batch: MessageBatch<unknown>): void {
  log.error("queue.foreign_batch", {
    queue: batch.queue,
    messages: batch.messages.length,
    consequence: "retried: no handler in this Worker consumes this queue; it carries no registered operation type",
  });
  batch.retryAll();
}
