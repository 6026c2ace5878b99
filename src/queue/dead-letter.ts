/**
 * The dead-letter bridge: a message the queue gave up on resolves its run as
 * `queue.max_attempts_exceeded`, unless the run is already terminal.
 *
 * Idempotent: the transition is a compare-and-set, so a redelivered
 * dead-letter message (or one racing the tracker or the sweep) finds the run
 * terminal and changes nothing. It goes to D1 directly, not through the
 * tracker, so it works even when the tracker cannot act; the tracker follows
 * D1 the next time its alarm fires.
 */
import type { RunService } from "../runs";
import { log } from "../log";
import { runServiceFor } from "../run-service";
import { operationMessage } from "./messages";
import { recordMalformed } from "./malformed";

export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const service = runServiceFor(env.DB);
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await bridgeMessage(message, batch.queue, env, service);
      } catch (error) {
        log.error("dead_letter.message_failed", { queue: batch.queue, messageId: message.id, error });
        message.retry();
      }
    }),
  );
}

export async function bridgeMessage(message: Message<unknown>, queue: string, env: Env, service: RunService): Promise<void> {
  const parsed = operationMessage.safeParse(message.body);
  if (!parsed.success) {
    await recordMalformed(env, queue, message, parsed.error, "system:dead-letter");
    message.ack();
    return;
  }
  const answer = await service.deadLetter(parsed.data.runId, {
    queue,
    messageId: message.id,
    deadLetteredAt: Date.now(),
    dlqDeliveries: message.attempts,
  });
  log.info("dead_letter.bridged", {
    runId: parsed.data.runId,
    changed: answer.ok,
    refusal: answer.ok ? null : answer.refusal,
  });
  message.ack();
}
