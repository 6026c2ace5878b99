/**
 * The dead-letter bridge (contract v2 section 4.3): a message the queue gave
 * up on becomes `queue.max_attempts_exceeded` only when it is the run's
 * current, unclaimed dispatch and the run is not terminal — the run's tracker
 * decides, since only it knows the dispatch. A copy of a dispatch that started
 * an attempt, or an older dispatch, is recorded in the log and ignored.
 *
 * Idempotent: a redelivered dead-letter message (or one racing the tracker or
 * the sweep) finds the run terminal, or the dispatch no longer current, and
 * changes nothing. If the tracker cannot be reached, the message is retried;
 * the sweep remains the backstop.
 */
import { runServiceFor } from "../run-service";
import { trackerFor } from "../tracker";
import { log } from "../log";
import { dispatchOf, operationMessage } from "./messages";
import { recordMalformed } from "./malformed";

export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await bridgeMessage(message, batch.queue, env);
      } catch (error) {
        log.error("dead_letter.message_failed", { queue: batch.queue, messageId: message.id, error });
        message.retry();
      }
    }),
  );
}

export async function bridgeMessage(message: Message<unknown>, queue: string, env: Env): Promise<void> {
  const parsed = operationMessage.safeParse(message.body);
  if (!parsed.success) {
    await recordMalformed(env, queue, message, parsed.error, "system:dead-letter");
    message.ack();
    return;
  }
  const { runId } = parsed.data;
  const dispatch = dispatchOf(parsed.data);
  const evidence = { queue, messageId: message.id, dispatch, deadLetteredAt: Date.now(), dlqDeliveries: message.attempts };
  let answer = await trackerFor(env, runId).deadLettered({ dispatch, evidence });
  if (!answer.bridged && answer.why === "not_found") {
    // No tracker holds the run (one accepted before the dispatch model, or never handed
    // over): nobody else will dispatch it, so the dead letter decides through D1 directly.
    const direct = await runServiceFor(env.DB, env.WEBHOOKS_QUEUE).deadLetter(runId, evidence);
    answer = direct.ok ? { bridged: true } : { bridged: false, why: direct.refusal === "not_found" ? "not_found" : "terminal" };
  }
  log.info("dead_letter.bridged", { runId, dispatch, bridged: answer.bridged, ignored: answer.bridged ? null : answer.why });
  message.ack();
}
