/**
 * Audit events: who acted, what, on which subject, with redacted evidence.
 * A transition's event is inserted in the same D1 batch as its conditional
 * update and guarded by `changes() = 1`, so only the winning writer's event
 * exists — exactly one event per transition under any race.
 */
import { redactMetadata } from "../lifecycle";
import { newEventId } from "./ids";

/** `user:…`, `api-token:…` or one of the system actors. */
export type Actor =
  | `user:${string}`
  | `api-token:${string}`
  | "system:tracker"
  | "system:sweep"
  | "system:dead-letter"
  | "system:consumer";

/** Owner of events that belong to no tenant (e.g. a malformed queue message). Created by a migration. */
export const SYSTEM_WORKSPACE_ID = "ws_system";

export const ACTOR_KINDS = ["user", "api-token", "system"] as const;
export type ActorKind = (typeof ACTOR_KINDS)[number];

export function actorKind(actor: string): ActorKind | null {
  const kind = actor.slice(0, actor.indexOf(":"));
  return (ACTOR_KINDS as readonly string[]).includes(kind) ? (kind as ActorKind) : null;
}

export interface AuditEventInput {
  workspaceId: string;
  actor: Actor;
  action: string;
  subjectType: "run" | "queue_message";
  subjectId: string;
  metadata: Record<string, unknown>;
  createdAt: number;
}

/** Every column of `audit_events`, in table order. */
export const AUDIT_COLUMNS = "id, workspace_id, actor, action, subject_type, subject_id, metadata, created_at";

function values(e: AuditEventInput): unknown[] {
  return [
    newEventId(e.createdAt),
    e.workspaceId,
    e.actor,
    e.action,
    e.subjectType,
    e.subjectId,
    JSON.stringify(redactMetadata(e.metadata)),
    e.createdAt,
  ];
}

/** An unconditional insert (events that are not transitions, e.g. a discarded late result). */
export function insertAuditEvent(db: D1Database, e: AuditEventInput): D1PreparedStatement {
  return db.prepare(`INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`).bind(...values(e));
}

/**
 * An insert that happens only if the statement just before it in the same
 * batch changed exactly one row (the transition's compare-and-set).
 */
export function insertAuditEventIfWon(db: D1Database, e: AuditEventInput): D1PreparedStatement {
  return db
    .prepare(`INSERT INTO audit_events (${AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1`)
    .bind(...values(e));
}
