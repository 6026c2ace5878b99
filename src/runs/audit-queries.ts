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

/** One run's events in order: `?1` the run id, `?2` its workspace. A range of the primary key, which starts with the subject. */
export const RUN_TIMELINE_SQL = `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE subject_type = 'run' AND subject_id = ?1 AND workspace_id = ?2 ORDER BY id LIMIT 500`;

/** One event: `?1` its id, `?2` its workspace. One entry of audit_events_workspace_id_idx, then the row by its key. */
export const AUDIT_EVENT_SQL = `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE id = ?1 AND workspace_id = ?2`;

/** One run's events in the order they happened (at most 500). */
export async function runTimeline(db: D1Reader, workspaceId: string, runId: string): Promise<AuditEvent[]> {
  const res = await db.prepare(RUN_TIMELINE_SQL).bind(runId, workspaceId).all<AuditRow>();
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

/** The statement behind listAuditEvents: audit_events_workspace_id_idx, or the primary key for one run. */
export function listAuditEventsQuery(workspaceId: string, f: AuditFilter): { sql: string; params: unknown[] } {
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
  return { sql: `SELECT ${AUDIT_COLUMNS} FROM audit_events WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`, params };
}

/** A workspace's events newest first, `f.limit` a page, keyset-paginated by `nextCursor`. */
export async function listAuditEvents(
  db: D1Reader,
  workspaceId: string,
  f: AuditFilter,
): Promise<{ events: AuditEvent[]; nextCursor: string | null; rowsRead: number }> {
  const q = listAuditEventsQuery(workspaceId, f);
  const res = await db
    .prepare(q.sql)
    .bind(...q.params)
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
    .prepare(AUDIT_EVENT_SQL)
    .bind(id, workspaceId)
    .first<AuditRow>();
  return row ? toEvent(row) : null;
}
