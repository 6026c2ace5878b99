/**
 * Workspace members: a user (by email) with one role per workspace. Every
 * write keeps at least one owner: the guard is inside the statement, so two
 * owners removing each other at once cannot leave a workspace ownerless.
 */
import type { MembershipRole } from "../db/schema";
import { statement, type SqlStatement } from "../db/statements";
import { auditEventSql } from "../runs/audit-event";
import { workspaceIdExpr, type ActorRef, type WorkspaceRef } from "./refs";

export interface MemberRow {
  user_id: string;
  email: string;
  name: string;
  role: MembershipRole;
  created_at: number;
}

export function listMembersSql(ws: WorkspaceRef): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(
    `SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.workspace_id = ${w.sql} ORDER BY u.email`,
    w.param,
  );
}

export interface PersonRow {
  user_id: string;
  email: string;
  name: string;
  /** The role in the workspace asked about; null when the person is not a member. */
  role: MembershipRole | null;
}

/** A user by email, with their role in `workspaceId` (null if not a member); no row if no such user. */
export function personSql(ws: WorkspaceRef, email: string): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(
    `SELECT u.id AS user_id, u.email, u.name, m.role FROM users u
       LEFT JOIN memberships m ON m.user_id = u.id AND m.workspace_id = ${w.sql}
      WHERE u.email = ?`,
    w.param,
    email,
  );
}

/** A member of `workspaceId` by user id; no row if not a member. */
export function memberByIdSql(ws: WorkspaceRef, userId: string): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(
    `SELECT u.id AS user_id, u.email, u.name, m.role, m.created_at FROM memberships m JOIN users u ON u.id = m.user_id
      WHERE m.workspace_id = ${w.sql} AND m.user_id = ?`,
    w.param,
    userId,
  );
}

/** `usr_` and 16 random bytes, hex. */
export function newUserId(): string {
  return `usr_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// True while the workspace has another owner besides the member being changed.
const KEEPS_AN_OWNER = `(role <> 'owner' OR (SELECT count(*) FROM memberships o WHERE o.workspace_id = memberships.workspace_id AND o.role = 'owner') > 1)`;

/**
 * Add a person to a workspace. `user.isNew`: the user row is created too
 * (Cloudflare Access lets in only emails with a user row). The membership is
 * inserted only if that exact user exists and is not yet a member; the
 * `member.added` event only if it was.
 */
export function addMemberSql(m: {
  workspaceId: string;
  user: { id: string; email: string; name: string; isNew: boolean };
  role: MembershipRole;
  now: number;
  by: ActorRef;
  eventId: string;
}): SqlStatement[] {
  return [
    ...(m.user.isNew
      ? [statement("INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", m.user.id, m.user.email, m.user.name, m.now)]
      : []),
    statement(
      `INSERT INTO memberships (workspace_id, user_id, role, created_at) SELECT ?, ?, ?, ?
        WHERE EXISTS (SELECT 1 FROM users WHERE id = ? AND email = ?) ON CONFLICT DO NOTHING`,
      m.workspaceId,
      m.user.id,
      m.role,
      m.now,
      m.user.id,
      m.user.email,
    ),
    auditEventSql(
      {
        workspaceId: m.workspaceId,
        actor: m.by.actor,
        action: "member.added",
        subjectType: "user",
        subjectId: m.user.id,
        metadata: { email: m.user.email, role: m.role, newUser: m.user.isNew, ...m.by.metadata },
        createdAt: m.now,
      },
      { ifWon: true, id: m.eventId },
    ),
  ];
}

/** Change a member's role from `from` to `to`; not if it would leave the workspace without an owner, nor if the role changed meanwhile. */
export function setRoleSql(m: {
  workspaceId: string;
  userId: string;
  email: string;
  from: MembershipRole;
  to: MembershipRole;
  now: number;
  by: ActorRef;
  eventId: string;
}): SqlStatement[] {
  return [
    statement(
      `UPDATE memberships SET role = ? WHERE workspace_id = ? AND user_id = ? AND role = ? AND (? = 'owner' OR ${KEEPS_AN_OWNER})`,
      m.to,
      m.workspaceId,
      m.userId,
      m.from,
      m.to,
    ),
    auditEventSql(
      {
        workspaceId: m.workspaceId,
        actor: m.by.actor,
        action: "member.role_changed",
        subjectType: "user",
        subjectId: m.userId,
        metadata: { email: m.email, from: m.from, to: m.to, ...m.by.metadata },
        createdAt: m.now,
      },
      { ifWon: true, id: m.eventId },
    ),
  ];
}

/** Remove a member; not the last owner. The user row stays (their past audit events name them). */
export function removeMemberSql(m: {
  workspaceId: string;
  userId: string;
  email: string;
  role: MembershipRole;
  now: number;
  by: ActorRef;
  eventId: string;
}): SqlStatement[] {
  return [
    statement(`DELETE FROM memberships WHERE workspace_id = ? AND user_id = ? AND ${KEEPS_AN_OWNER}`, m.workspaceId, m.userId),
    auditEventSql(
      {
        workspaceId: m.workspaceId,
        actor: m.by.actor,
        action: "member.removed",
        subjectType: "user",
        subjectId: m.userId,
        metadata: { email: m.email, role: m.role, ...m.by.metadata },
        createdAt: m.now,
      },
      { ifWon: true, id: m.eventId },
    ),
  ];
}

/**
 * Whether a guarded write won: its event exists exactly then. Tenancy events are about no run, so
 * the partial index of those by id finds it (the table's key starts with the subject, migration 0012).
 */
export const eventExistsSql = (eventId: string): SqlStatement =>
  statement("SELECT count(*) AS won FROM audit_events WHERE id = ? AND subject_type <> 'run'", eventId);
