/**
 * Audit events: who acted, what, on which subject, with redacted evidence.
 * A transition's event is inserted in the same D1 batch as its conditional
 * update and guarded by `changes() = 1`, so only the winning writer's event
 * exists — exactly one event per transition under any race.
 */
import { prepared } from "../db/d1";
import { auditEventSql, type AuditEventInput } from "./audit-event";

export * from "./audit-event";

/** An unconditional insert (events that are not transitions, e.g. a discarded late result). */
export function insertAuditEvent(db: D1Database, e: AuditEventInput): D1PreparedStatement {
  return prepared(db, auditEventSql(e));
}

/**
 * An insert that happens only if the statement just before it in the same
 * batch changed exactly one row (the transition's compare-and-set).
 */
export function insertAuditEventIfWon(db: D1Database, e: AuditEventInput): D1PreparedStatement {
  return prepared(db, auditEventSql(e, { ifWon: true }));
}
