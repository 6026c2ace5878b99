/**
 * One try of one webhook delivery, as the webhooks queue consumer makes it.
 *
 * The try is claimed first (a compare-and-set on the row's `attempts`, the
 * count the message carries), so a duplicate message or a re-drive that
 * raced a live message never makes a second concurrent try. It is signed
 * with the `standardwebhooks` package (the same `webhook-id` on every try;
 * `webhook-timestamp` is the time of this try, which receivers check against
 * a 5-minute tolerance), POSTed with a timeout and without following
 * redirects, and its answer recorded on the row. A failed try schedules the
 * next by sending a new message with a delay (./schedule.ts) until the
 * endpoint's tries are spent; then the delivery is `failed` (given up).
 *
 * Idempotency: a message delivered twice finds the count moved on and is
 * dropped ("stale"); a consumer that dies mid-try leaves the row claimed until
 * its lease ends, after which the cron re-drives it (./redrive.ts).
 */
import { Webhook } from "standardwebhooks";
import { z } from "zod";
import { errorMessage, sanitizeMessage } from "../lifecycle";
import { log } from "../log";
import { webhookConfig, type WebhookConfig } from "./config";
import type { WebhookMessage } from "./messages";
import { hasTriesLeft, MAX_QUEUE_DELAY_SECONDS, retryDelaySeconds } from "./schedule";

/** A claimed try holds the row this long past its timeout before the cron may re-drive it (ms). */
export const LEASE_MARGIN_MS = 30_000;
/** The latest tries kept in a delivery's log. */
export const MAX_LOGGED_TRIES = 20;
/** Characters of a failed answer's body kept (sanitised; shown escaped in the admin). */
export const EXCERPT_CHARS = 200;

export interface DeliveryDeps {
  fetch?: typeof fetch;
  now?: () => number;
  random?: () => number;
  config?: WebhookConfig;
}

/** What one message did. */
export type TryOutcome =
  | "delivered"
  | "retry_scheduled"
  | "gave_up"
  /** The delivery moved on (a duplicate or raced message): nothing done. */
  | "stale"
  /** Arrived before the try is due: sent again with the remaining delay. */
  | "not_due"
  /** The delivery or its endpoint no longer exists (deleted, or purged). */
  | "gone";

/** One try as the delivery log keeps it. */
export const loggedTry = z.object({
  attempt: z.number(),
  at: z.number(),
  statusCode: z.number().nullable(),
  error: z.string().nullable(),
  excerpt: z.string().nullable(),
});
export type LoggedTry = z.infer<typeof loggedTry>;

interface DeliveryRow {
  message_id: string;
  endpoint_id: string;
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  attempt_log: string;
  url: string;
  secret: string;
}

/** The log column as written by this module; an unreadable one is reported and restarted, not trusted. */
export function parseAttemptLog(text: string, where: Record<string, unknown>): LoggedTry[] {
  const parsed = z.array(loggedTry).safeParse(safeJson(text));
  if (parsed.success) return parsed.data;
  log.error("webhooks.attempt_log_unreadable", { ...where, consequence: "the log restarts from this try" });
  return [];
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // reported by the caller's schema check
  }
}

/** At most EXCERPT_CHARS of a body, read no further than needed, sanitised. */
async function excerptOf(res: Response): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    while (text.length < EXCERPT_CHARS * 4) {
      const { done, value } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    // A body that breaks mid-read still has the status code to report.
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const clean = sanitizeMessage(text, EXCERPT_CHARS);
  return clean === "" ? null : clean;
}

interface Answer {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  excerpt: string | null;
}

/** POST the signed payload; every failure is an answer, never a throw. */
async function post(row: DeliveryRow, at: number, config: WebhookConfig, fetchFn: typeof fetch): Promise<Answer> {
  const signature = new Webhook(row.secret).sign(row.message_id, new Date(at), row.payload);
  let res: Response;
  try {
    res = await fetchFn(row.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "user-agent": "oplife-webhooks/1",
        "webhook-id": row.message_id,
        "webhook-timestamp": String(Math.floor(at / 1000)),
        "webhook-signature": signature,
      },
      body: row.payload,
      // A redirect is an answer, not an instruction: following it could reach an address the URL check refused.
      redirect: "manual",
      signal: AbortSignal.timeout(config.WEBHOOK_TIMEOUT_MS),
    });
  } catch (error) {
    const timedOut = error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError");
    return {
      ok: false,
      statusCode: null,
      error: timedOut ? `No answer within ${config.WEBHOOK_TIMEOUT_MS} ms.` : `Could not connect: ${errorMessage(error)}`,
      excerpt: null,
    };
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => undefined);
    return { ok: true, statusCode: res.status, error: null, excerpt: null };
  }
  const excerpt = await excerptOf(res);
  const error = res.status >= 300 && res.status < 400 ? `Answered HTTP ${res.status}; redirects are not followed.` : `Answered HTTP ${res.status}.`;
  return { ok: false, statusCode: res.status, error, excerpt };
}

async function schedule(env: Env, message: WebhookMessage, delaySeconds: number): Promise<void> {
  await env.WEBHOOKS_QUEUE.send(message, { contentType: "json", delaySeconds: Math.min(MAX_QUEUE_DELAY_SECONDS, Math.max(0, delaySeconds)) });
}

/**
 * Make the try `message` asks for. Throws only when D1 or the queue fails
 * (the caller retries the message); a receiver's failure is recorded, not thrown.
 */
export async function tryDelivery(env: Env, message: WebhookMessage, deps: DeliveryDeps = {}): Promise<TryOutcome> {
  const now = deps.now ?? Date.now;
  const config = deps.config ?? webhookConfig(env);
  const where = { messageId: message.messageId, endpointId: message.endpointId };
  const row = await env.DB.prepare(
    `SELECT d.message_id, d.endpoint_id, d.payload, d.status, d.attempts, d.next_attempt_at, d.attempt_log, e.url, e.secret
       FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
      WHERE d.message_id = ? AND d.endpoint_id = ?`,
  )
    .bind(message.messageId, message.endpointId)
    .first<DeliveryRow>();
  if (!row) return "gone";
  if (row.status !== "pending" || row.attempts !== message.tries) return "stale";
  const claimedAt = now();
  if (row.next_attempt_at !== null && row.next_attempt_at > claimedAt) {
    // Early (a re-drive of a try that is scheduled anyway, or a clock step): wait for its time.
    await schedule(env, message, Math.ceil((row.next_attempt_at - claimedAt) / 1000));
    return "not_due";
  }
  const claim = await env.DB.prepare(
    `UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?
      WHERE message_id = ? AND endpoint_id = ? AND status = 'pending' AND attempts = ?`,
  )
    .bind(claimedAt + config.WEBHOOK_TIMEOUT_MS + LEASE_MARGIN_MS, claimedAt, row.message_id, row.endpoint_id, message.tries)
    .run();
  if (claim.meta.changes !== 1) return "stale";

  const tries = message.tries + 1;
  const answer = await post(row, claimedAt, config, deps.fetch ?? fetch);
  const endedAt = now();
  const entry: LoggedTry = { attempt: tries, at: claimedAt, statusCode: answer.statusCode, error: answer.error, excerpt: answer.excerpt };
  const attemptLog = JSON.stringify([...parseAttemptLog(row.attempt_log, where), entry].slice(-MAX_LOGGED_TRIES));
  const retry = !answer.ok && hasTriesLeft(tries, config.WEBHOOK_MAX_ATTEMPTS);
  const delay = retry ? retryDelaySeconds(tries, config.WEBHOOK_RETRY_BASE_SECONDS, deps.random) : 0;
  const status = answer.ok ? "delivered" : retry ? "pending" : "failed";
  await env.DB.prepare(
    `UPDATE webhook_deliveries
        SET status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?, attempt_log = ?, updated_at = ?
      WHERE message_id = ? AND endpoint_id = ? AND status = 'pending' AND attempts = ?`,
  )
    .bind(status, retry ? endedAt + delay * 1000 : null, answer.statusCode, answer.error, attemptLog, endedAt, row.message_id, row.endpoint_id, tries)
    .run();
  if (answer.ok) return "delivered";
  if (!retry) {
    log.warn("webhooks.gave_up", { ...where, tries, statusCode: answer.statusCode, error: answer.error });
    return "gave_up";
  }
  await schedule(env, { ...message, tries }, delay);
  return "retry_scheduled";
}
