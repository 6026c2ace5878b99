/**
 * A workspace's webhook endpoints: created (the signing secret is returned
 * once), listed (never with the secret), deleted (with their delivery log),
 * each write with its audit event in one guarded batch. The API
 * (src/api/webhook-endpoints.ts) and the admin (src/admin/settings/webhooks.tsx)
 * both go through here, so the rules are the same: a checked URL
 * (./url.ts), at most MAX_ENDPOINTS_PER_WORKSPACE endpoints.
 */
import { z } from "zod";
import { prepared, runBatch } from "../db/d1";
import { statement } from "../db/statements";
import { auditEventSql, type Actor } from "../runs/audit-event";
import { newEventId } from "../runs/ids";
import { webhookConfig } from "./config";
import { parseAttemptLog, type LoggedTry } from "./deliver";
import { WEBHOOK_EVENT_TYPES } from "./events";
import { newWebhookEndpointId, newWebhookSecret } from "./ids";
import { ENDPOINT_ID } from "./messages";
import { checkWebhookUrl } from "./url";

/** Each endpoint adds a row to every terminal transition's batch: a small bound keeps that cost known. */
export const MAX_ENDPOINTS_PER_WORKSPACE = 10;

/** What a client may send to create an endpoint (the URL is checked apart: its rule depends on APP_ENV). */
export const endpointRequest = z
  .object({
    url: z.string().min(1).max(2048),
    description: z.string().trim().max(200).optional(),
    /** Event types to receive; omitted means all, present and empty is refused. */
    eventTypes: z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length).optional(),
  })
  .strict();
export type EndpointRequest = z.infer<typeof endpointRequest>;

export interface WebhookEndpoint {
  id: string;
  url: string;
  description: string | null;
  /** `null`: every event type. */
  eventTypes: string[] | null;
  createdAt: number;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string | null;
  event_types: string | null;
  created_at: number;
}

const COLUMNS = "id, url, description, event_types, created_at";

function toEndpoint(r: EndpointRow): WebhookEndpoint {
  const types = r.event_types === null ? null : z.array(z.string()).safeParse(JSON.parse(r.event_types));
  return {
    id: r.id,
    url: r.url,
    description: r.description,
    // A column only this module writes; unreadable would be a bug, and it then reads as "all".
    eventTypes: types === null || !types.success ? null : types.data,
    createdAt: r.created_at,
  };
}

export interface Acting {
  actor: Actor;
  /** The actor's id (user or token), kept in the audit event's metadata. */
  actorId: string;
}

export type CreateEndpointResult =
  | { ok: true; endpoint: WebhookEndpoint; secret: string }
  | { ok: false; field: "url" | "(root)"; message: string; status: 400 | 409 };

/** A workspace's endpoints, oldest first. */
export async function listEndpoints(db: D1Database, workspaceId: string): Promise<WebhookEndpoint[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE workspace_id = ? ORDER BY id`)
    .bind(workspaceId)
    .all<EndpointRow>();
  return results.map(toEndpoint);
}

/** One endpoint of the workspace; null for an unknown id or another workspace's. */
export async function getEndpoint(db: D1Database, workspaceId: string, id: string): Promise<WebhookEndpoint | null> {
  if (!ENDPOINT_ID.test(id)) return null;
  const row = await db
    .prepare(`SELECT ${COLUMNS} FROM webhook_endpoints WHERE id = ? AND workspace_id = ?`)
    .bind(id, workspaceId)
    .first<EndpointRow>();
  return row ? toEndpoint(row) : null;
}

/**
 * Create an endpoint. The URL rule follows `env.APP_ENV` (./url.ts). The
 * insert is guarded by the workspace's count, so concurrent creates cannot
 * pass the limit; its audit event exists exactly when it was inserted.
 */
export async function createEndpoint(
  env: Pick<Env, "DB" | "APP_ENV">,
  workspaceId: string,
  req: EndpointRequest,
  by: Acting,
): Promise<CreateEndpointResult> {
  const url = checkWebhookUrl(req.url, { allowPrivate: webhookConfig(env).allowPrivateTargets });
  if (!url.ok) return { ok: false, field: "url", message: url.message, status: 400 };
  const now = Date.now();
  const id = newWebhookEndpointId(now);
  const secret = newWebhookSecret();
  const description = req.description ? req.description : null;
  const eventTypes = req.eventTypes ? JSON.stringify([...new Set(req.eventTypes)]) : null;
  const results = await runBatch(env.DB, [
    statement(
      `INSERT INTO webhook_endpoints (id, workspace_id, url, description, event_types, secret, created_at)
       SELECT ?, ?, ?, ?, ?, ?, ? WHERE (SELECT COUNT(*) FROM webhook_endpoints WHERE workspace_id = ?) < ?`,
      id,
      workspaceId,
      url.url,
      description,
      eventTypes,
      secret,
      now,
      workspaceId,
      MAX_ENDPOINTS_PER_WORKSPACE,
    ),
    auditEventSql(
      {
        workspaceId,
        actor: by.actor,
        action: "webhook_endpoint.created",
        subjectType: "webhook_endpoint",
        subjectId: id,
        metadata: { url: url.url, description, eventTypes: req.eventTypes ?? null, actorId: by.actorId },
        createdAt: now,
      },
      { ifWon: true, id: newEventId(now) },
    ),
  ]);
  if ((results[0]?.meta.changes ?? 0) !== 1) {
    return { ok: false, field: "(root)", message: `A workspace has at most ${MAX_ENDPOINTS_PER_WORKSPACE} webhook endpoints; delete one first.`, status: 409 };
  }
  return { ok: true, secret, endpoint: { id, url: url.url, description, eventTypes: req.eventTypes ?? null, createdAt: now } };
}

/** Delete an endpoint of the workspace and its delivery log; false if there was none to delete. */
export async function deleteEndpoint(db: D1Database, workspaceId: string, endpoint: WebhookEndpoint, by: Acting): Promise<boolean> {
  const now = Date.now();
  const results = await runBatch(db, [
    statement("DELETE FROM webhook_endpoints WHERE id = ? AND workspace_id = ?", endpoint.id, workspaceId),
    auditEventSql(
      {
        workspaceId,
        actor: by.actor,
        action: "webhook_endpoint.deleted",
        subjectType: "webhook_endpoint",
        subjectId: endpoint.id,
        metadata: { url: endpoint.url, actorId: by.actorId },
        createdAt: now,
      },
      { ifWon: true },
    ),
  ]);
  return (results[0]?.meta.changes ?? 0) === 1;
}

/** One delivery as its log shows it (times in ms). No payload, no secret. */
export interface DeliveryLogEntry {
  messageId: string;
  runId: string;
  eventType: string;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  /** When the next try is due; null once delivered or given up. */
  nextAttemptAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  tries: LoggedTry[];
  createdAt: number;
  updatedAt: number;
}

const deliveryStatus = z.enum(["pending", "delivered", "failed"]);

/** An endpoint's latest deliveries, newest first (the endpoint must be the workspace's: the caller checked). */
export async function endpointDeliveries(db: D1Database, endpointId: string, limit = 50): Promise<DeliveryLogEntry[]> {
  const { results } = await prepared(
    db,
    statement(
      `SELECT message_id, run_id, event_type, status, attempts, next_attempt_at, last_status_code, last_error, attempt_log, created_at, updated_at
         FROM webhook_deliveries WHERE endpoint_id = ? ORDER BY message_id DESC LIMIT ?`,
      endpointId,
      limit,
    ),
  ).all<{
    message_id: string;
    run_id: string;
    event_type: string;
    status: string;
    attempts: number;
    next_attempt_at: number | null;
    last_status_code: number | null;
    last_error: string | null;
    attempt_log: string;
    created_at: number;
    updated_at: number;
  }>();
  return results.map((r) => ({
    messageId: r.message_id,
    runId: r.run_id,
    eventType: r.event_type,
    status: deliveryStatus.catch("pending").parse(r.status),
    attempts: r.attempts,
    nextAttemptAt: r.next_attempt_at,
    lastStatusCode: r.last_status_code,
    lastError: r.last_error,
    tries: parseAttemptLog(r.attempt_log, { messageId: r.message_id, endpointId }),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  }));
}
