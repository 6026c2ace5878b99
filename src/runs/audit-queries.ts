/**
 * Reading the audit trail: one run's timeline in order, and a workspace's
 * events newest first with keyset pagination and filters. Both are scoped by
 * workspace, so another workspace's events do not exist for the caller.
 */
import { AUDIT_COLUMNS, actorKind, type ActorKind } from "./audit";
import type { D1Reader } from "../db/read-session";
import type { JsonValue } from "./records";

export interface AuditEvent {
  id: string;
  workspaceId: string;
  actor: string;
  actorKind: ActorKind | null;
  action: string;
  subjectType: string;
  subjectId: string;
  metadata: JsonValue;
  createdAt: number;
}

interface AuditRow {
  id: string;
  workspace_id: string;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string;
  metadata: string;
  created_at: number;
}


function toEvent(r: AuditRow): AuditEvent {
  let metadata: JsonValue;
  try {
    metadata = JSON.parse(r.metadata) as JsonValue;
  } catch {
    // Written only by insertAuditEvent as JSON; corruption reads as null rather than breaking a page.
    metadata = null;
  }
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    actor: r.actor,
    actorKind: actorKind(r.actor),
    action: r.action,
    subjectType: r.subject_type,
    subjectId: r.subject_id,
    metadata,
    createdAt: r.created_at,
  };
}

/** One run's events in the order they happened (uses audit_events_subject_idx). */
export async function runTimeline(db: D1Reader, workspaceId: string, runId: string): Promise<AuditEvent[]> {
  const res = await db
    .prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE subject_type = 'run' AND subject_id = ? AND workspace_id = ? ORDER BY id LIMIT 500`)
    .bind(runId, workspaceId)
    .all<AuditRow>();
  return res.results.map(toEvent);
}

export interface AuditFilter {
  action?: string;
  actorKind?: ActorKind;
  runId?: string;
  /** Exclusive keyset cursor: events older than this id. */
  before?: string;
  limit: number;
}

/** A workspace's events newest first (uses audit_events_workspace_id_idx, or the subject index for one run). */
export async function listAuditEvents(
  db: D1Reader,
  workspaceId: string,
  f: AuditFilter,
): Promise<{ events: AuditEvent[]; nextCursor: string | null; rowsRead: number }> {
  const where = ["workspace_id = ?"];
  const params: unknown[] = [workspaceId];
  if (f.runId) {
    where.push("subject_type = 'run' AND subject_id = ?");
    params.push(f.runId);
  }
  if (f.action) {
    where.push("action = ?");
    params.push(f.action);
  }
  if (f.actorKind) {
    // Actors are "<kind>:<id>": a prefix range keeps it index-friendly and exact.
    where.push("actor >= ? AND actor < ?");
    params.push(`${f.actorKind}:`, `${f.actorKind};`);
  }
  if (f.before) {
    where.push("id < ?");
    params.push(f.before);
  }
  params.push(f.limit + 1);
  const res = await db
    .prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`)
    .bind(...params)
    .all<AuditRow>();
  const rows = res.results.slice(0, f.limit);
  return {
    events: rows.map(toEvent),
    nextCursor: res.results.length > f.limit && rows.length > 0 ? rows[rows.length - 1]!.id : null,
    rowsRead: res.meta.rows_read,
  };
}

/** One event, scoped by workspace. */
export async function getAuditEvent(db: D1Reader, workspaceId: string, id: string): Promise<AuditEvent | null> {
  const row = await db
    .prepare(`SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE id = ? AND workspace_id = ?`)
    .bind(id, workspaceId)
    .first<AuditRow>();
  return row ? toEvent(row) : null;
}
