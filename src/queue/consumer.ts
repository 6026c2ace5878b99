/**
 * The operations queue consumer. The handler loops and settles each message
 * on its own (one bad message never fails the batch); the work per message is
 * `processMessage`, a plain function the tests call directly.
 *
 * Runs twice safely: a redelivered message claims through the run's tracker,
 * which answers duplicate (same attempt alive), fenced (older attempt) or
 * terminal, and the handler does not run again.
 */
import { errorMessage } from "../lifecycle";
import { getOperation, policyFor } from "../operations";
import { trackerFor, type ClaimAnswer, type ReportAnswer } from "../tracker";
import { log } from "../log";
import { runAttempt } from "./attempt";
import { operationMessage } from "./messages";
import { recordMalformed } from "./malformed";

// No timing-contract check here: a violated contract refuses new runs at acceptance
// (the API), while runs already accepted keep converging (contract section 5).
export async function handleOperationsBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  await Promise.all(
    batch.messages.map(async (message) => {
      try {
        await processMessage(message, batch.queue, env);
      } catch (error) {
        // Infrastructure failed (D1 or the tracker unreachable): nothing was
        // decided, so let the queue deliver it again.
        log.error("consumer.message_failed", { queue: batch.queue, messageId: message.id, attempts: message.attempts, error });
        message.retry();
      }
    }),
  );
}

export async function processMessage(message: Message<unknown>, queue: string, env: Env): Promise<void> {
  const parsed = operationMessage.safeParse(message.body);
  if (!parsed.success) {
    await recordMalformed(env, queue, message, parsed.error, "system:consumer");
    message.ack();
    return;
  }
  const { runId } = parsed.data;
  const attempt = message.attempts;
  const tracker = trackerFor(env, runId);
  const claim: ClaimAnswer = await tracker.claim({ runId, attempt });
  if (!claim.ok) {
    // terminal, duplicate (the same attempt is alive elsewhere), fenced (a newer
    // attempt holds the lease), exhausted or not found: the handler must not run.
    log.info("consumer.claim_refused", { runId, attempt, refusal: claim.refusal, messageId: message.id });
    message.ack();
    return;
  }
  const ticket = claim.run;
  const fail = (reason: "operation.unknown_type" | "input.invalid" | "handler.error" | "attempt.timeout", retryable: boolean, msg: string) =>
    tracker.fail({ runId, attempt, reason, retryable, message: msg });

  const op = getOperation(ticket.type);
  if (!op) {
    settle(message, ticket.type, await fail("operation.unknown_type", false, `No handler is registered for type "${ticket.type}".`));
    return;
  }
  const prepared = op.prepare(JSON.parse(ticket.inputJson));
  if (!prepared.ok) {
    const fields = prepared.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    settle(message, ticket.type, await fail("input.invalid", false, `The stored input is not valid for ${op.type}: ${fields}`));
    return;
  }
  const end = await runAttempt(prepared, ticket, tracker, op.policy);
  switch (end.kind) {
    case "result":
      settle(
        message,
        ticket.type,
        await tracker.complete({
          runId,
          attempt,
          outcome: end.result.outcome,
          ...(end.result.message !== undefined ? { message: end.result.message } : {}),
          ...(end.result.progress !== undefined ? { progress: end.result.progress } : {}),
        }),
      );
      return;
    case "timeout":
      settle(message, ticket.type, await fail("attempt.timeout", false, `The attempt exceeded its timeout of ${end.timeoutMs} ms.`));
      return;
    case "error":
      settle(message, ticket.type, await fail("handler.error", end.retryable, errorMessage(end.error)));
      return;
    case "fenced": {
      // The tracker took the lease away: the work is abandoned and nothing is reported.
      // If this very attempt was declared lost while still alive (its heartbeats stopped
      // reaching the tracker), the run is back in the queue awaiting a redelivery and
      // this message is the only one it has: retry it. A newer attempt or a terminal run: ack.
      const s = await tracker.status();
      const awaitsRedelivery = s.known && s.state.status === "queued" && s.state.attempt === attempt;
      log.info("consumer.attempt_fenced", { runId, attempt, refusal: end.refusal, redeliver: awaitsRedelivery });
      if (awaitsRedelivery) message.retry();
      else message.ack();
      return;
    }
  }
}

/**
 * Ack, or retry when the run is back in the queue: after a retryable failure
 * (with the policy's delay), or when this attempt was fenced because its
 * heartbeat was declared lost and the run awaits a new delivery.
 */
function settle(message: Message<unknown>, type: string, answer: ReportAnswer): void {
  if (answer.status === "queued") {
    message.retry(answer.ok ? { delaySeconds: policyFor(type).retryDelaySeconds } : {});
    return;
  }
  message.ack();
}
