/**
 * The cron's part in webhook delivery: re-send the tries whose message was
 * lost (a send that failed after its transition committed, a consumer that
 * died holding a claim), and purge settled deliveries past retention.
 *
 * Idempotent: a re-drive that races a live message is harmless, as the try is
 * claimed by a compare-and-set on the row's try count (./deliver.ts); the
 * message that loses is dropped as stale.
 */
import { log } from "../log";
import type { WebhookMessage } from "./messages";

/** A pending try is re-driven once it is this overdue (ms): its own message has had time to arrive. */
export const REDRIVE_GRACE_MS = 60_000;
/** Deliveries re-driven per cron run, oldest due first. */
export const REDRIVE_BATCH = 100;

export interface RedriveReport {
  redriven: number;
  purged: number;
}

export async function redriveWebhooks(env: Env, opts: { now: number; retentionMs: number }): Promise<RedriveReport> {
  const { results } = await env.DB.prepare(
    `SELECT message_id, endpoint_id, attempts FROM webhook_deliveries
      WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
  )
    .bind(opts.now - REDRIVE_GRACE_MS, REDRIVE_BATCH)
    .all<{ message_id: string; endpoint_id: string; attempts: number }>();
  if (results.length > 0) {
    const messages: WebhookMessage[] = results.map((r) => ({ v: 1, messageId: r.message_id, endpointId: r.endpoint_id, tries: r.attempts }));
    await env.WEBHOOKS_QUEUE.sendBatch(messages.map((body) => ({ body, contentType: "json" as const })));
    log.warn("webhooks.redriven", { deliveries: results.length, reason: "their try was overdue: its message was lost or its consumer died" });
  }
  const purge = await env.DB.prepare(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND created_at < ?`)
    .bind(opts.now - opts.retentionMs)
    .run();
  return { redriven: results.length, purged: purge.meta.changes };
}
