/**
 * The webhooks queue's handler: each message is one try (./deliver.ts), all
 * of a batch's tries in parallel, so one slow receiver holds the batch no
 * longer than its timeout and never delays the others' tries.
 */
import { describeIssues } from "../queue/messages";
import { log } from "../log";
import { tryDelivery, type DeliveryDeps } from "./deliver";
import { webhookMessage } from "./messages";

export async function handleWebhooksBatch(batch: MessageBatch<unknown>, env: Env, deps: DeliveryDeps = {}): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = webhookMessage.safeParse(message.body);
      if (!parsed.success) {
        // It can never become valid: acked, and said loudly.
        log.error("webhooks.malformed_message", { queue: batch.queue, queueMessageId: message.id, issues: describeIssues(parsed.error) });
        message.ack();
        return;
      }
      try {
        const outcome = await tryDelivery(env, parsed.data, deps);
        log.info("webhooks.try", { messageId: parsed.data.messageId, endpointId: parsed.data.endpointId, outcome });
        message.ack();
      } catch (error) {
        // D1 or the queue failed around the try: the platform redelivers this message.
        log.error("webhooks.try_failed", { messageId: parsed.data.messageId, endpointId: parsed.data.endpointId, error });
        message.retry();
      }
    }),
  );
}
