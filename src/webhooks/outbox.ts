/**
 * The webhook outbox: a delivery row per (event, endpoint), written in the
 * same D1 batch as the run's terminal transition, so the event exists exactly
 * when the transition does, whichever writer (consumer, tracker, sweep,
 * dead-letter bridge) made it. A workspace with no endpoints costs a read of
 * an empty index range and no write.
 */
import { statement, type SqlStatement } from "../db/statements";
import type { RunState } from "../lifecycle";
import { log } from "../log";
import { runCompletedEvent } from "./events";
import { newWebhookMessageId } from "./ids";
import type { WebhookMessage } from "./messages";

export interface OutboxInsert {
  messageId: string;
  statement: SqlStatement;
  /**
   * The endpoints it wrote a delivery for (`endpoint_id` rows), read in the
   * same batch right after it: by the primary key's `message_id` prefix, a
   * row read per delivery and none when there is none. A `RETURNING` on the
   * insert cost two reads even then: D1 bills the rewind of the temporary
   * tables SQLite fills for RETURNING and for an INSERT…SELECT with it.
   */
  endpoints: SqlStatement;
}

/**
 * The outbox insert of a run becoming completed. It must come right after a
 * statement that changed exactly one row only when the transition won (the
 * transition's guarded audit insert): `changes() = 1` holds only then, and is
 * the value of that statement throughout this one (SQLite updates it when a
 * statement completes). `endpoints`, run right after it in the same batch,
 * names the endpoints, which the writer then announces to the queue
 * (`announceDeliveries`).
 */
export function outboxInsertFor(
  run: { id: string; workspaceId: string; type: string; createdAt: number },
  to: RunState,
  r: { completedAt: number; failureMessage: string | null },
): OutboxInsert {
  const messageId = newWebhookMessageId(r.completedAt);
  const payload = JSON.stringify(runCompletedEvent(run, to, r));
  return {
    messageId,
    statement: statement(
      `INSERT INTO webhook_deliveries
         (message_id, endpoint_id, workspace_id, run_id, event_type, payload, status, attempts, next_attempt_at, attempt_log, created_at, updated_at)
       SELECT ?1, e.id, e.workspace_id, ?2, 'run.completed', ?3, 'pending', 0, ?4, '[]', ?4, ?4
         FROM webhook_endpoints e
        WHERE e.workspace_id = ?5 AND changes() = 1
          AND (e.event_types IS NULL OR EXISTS (SELECT 1 FROM json_each(e.event_types) WHERE value = 'run.completed'))`,
      messageId,
      run.id,
      payload,
      r.completedAt,
      run.workspaceId,
    ),
    endpoints: statement(`SELECT endpoint_id FROM webhook_deliveries WHERE message_id = ?`, messageId),
  };
}

/** The first try of each delivery a transition wrote: one message per endpoint. */
export function firstTryMessages(messageId: string, endpointIds: readonly string[]): WebhookMessage[] {
  return endpointIds.map((endpointId) => ({ v: 1, messageId, endpointId, tries: 0 }));
}

/**
 * Send the first try of the deliveries a transition wrote. Never throws: the
 * transition is already committed, and a send that fails is re-driven by the
 * cron (./redrive.ts) once the delivery is overdue, so it is logged only.
 */
export async function announceDeliveries(queue: Queue<unknown> | undefined, messageId: string, endpointIds: readonly string[]): Promise<void> {
  if (endpointIds.length === 0) return;
  if (!queue) {
    log.warn("webhooks.no_queue", { messageId, deliveries: endpointIds.length, consequence: "the cron re-drives them" });
    return;
  }
  try {
    await queue.sendBatch(firstTryMessages(messageId, endpointIds).map((body) => ({ body, contentType: "json" as const })));
  } catch (error) {
    log.warn("webhooks.announce_failed", { messageId, deliveries: endpointIds.length, error, consequence: "the cron re-drives them" });
  }
}

/** The endpoint ids the outbox's `endpoints` read named (rows of another shape are ignored). */
export function endpointIdsOf(result: D1Result<unknown> | undefined): string[] {
  const ids: string[] = [];
  for (const row of result?.results ?? []) {
    const id: unknown = typeof row === "object" && row !== null ? (row as Record<string, unknown>).endpoint_id : undefined;
    if (typeof id === "string") ids.push(id);
  }
  return ids;
}
