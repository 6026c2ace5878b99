/**
 * Audit events as data (no D1 here, so the node-side CLI builds the same
 * rows): who acted, what, on which subject, with redacted evidence.
 * A transition's event is inserted in the same D1 batch as its conditional
 * update and guarded by `changes() = 1`, so only the winning writer's event
 * exists — exactly one event per transition under any race.
 */
import { statement, type SqlStatement } from "../db/statements";
import { redactMetadata } from "../lifecycle";
import { newEventId } from "./ids";

/**
 * Who acted, as a person reads it: `user:<email>`, `api-token:<token name>` or
 * one of the system actors (`system:cli` is the `npm run oplife` command line).
 * Ids are not part of the actor; events keep them in their metadata
 * (`actorId`: a user or token id).
 */
export type Actor =
  | `user:${string}`
  | `api-token:${string}`
  | "system:cli"
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
  subjectType: "run" | "queue_message" | "workspace" | "user" | "api_token" | "webhook_endpoint";
  subjectId: string;
  metadata: Record<string, unknown>;
  createdAt: number;
}

/** Every column of `audit_events`, in table order. */
export const AUDIT_COLUMNS = "id, workspace_id, actor, action, subject_type, subject_id, metadata, created_at";

function values(e: AuditEventInput, id: string): [string, string, string, string, string, string, string, number] {
  return [
    id,
    e.workspaceId,
    e.actor,
    e.action,
    e.subjectType,
    e.subjectId,
    JSON.stringify(redactMetadata(e.metadata)),
    e.createdAt,
  ];
}

/**
 * The insert as a statement (for writes built once and run by the Worker or
 * the CLI). `ifWon`: only if the statement just before it changed exactly one
 * row. `id` lets the caller look the event up afterwards: it exists exactly
 * when the guarded write won.
 */
export function auditEventSql(e: AuditEventInput, opts: { ifWon?: boolean; id?: string } = {}): SqlStatement {
  const row = values(e, opts.id ?? newEventId(e.createdAt));
  return opts.ifWon
    ? statement(`INSERT INTO audit_events (${AUDIT_COLUMNS}) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE changes() = 1`, ...row)
    : statement(`INSERT INTO audit_events (${AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ...row);
}
