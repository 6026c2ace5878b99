/** Workspaces: created by the CLI (a deploy's first step), listed for people. */
import { statement, type SqlStatement } from "../db/statements";
import { auditEventSql, SYSTEM_WORKSPACE_ID } from "../runs/audit-event";
import type { ActorRef } from "./refs";

export interface WorkspaceRow {
  id: string;
  slug: string;
  name: string;
  created_at: number;
  members: number;
  owners: number;
}

const WORKSPACE_COLUMNS = `w.id, w.slug, w.name, w.created_at,
  (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id) AS members,
  (SELECT count(*) FROM memberships m WHERE m.workspace_id = w.id AND m.role = 'owner') AS owners`;

/** Every tenant workspace by slug; the system workspace (owner of tenant-less events) is nobody's. */
export const listWorkspacesSql = (): SqlStatement =>
  statement(`SELECT ${WORKSPACE_COLUMNS} FROM workspaces w WHERE w.id <> ? ORDER BY w.slug`, SYSTEM_WORKSPACE_ID);

export const workspaceBySlugSql = (slug: string): SqlStatement =>
  statement(`SELECT ${WORKSPACE_COLUMNS} FROM workspaces w WHERE w.slug = ? AND w.id <> ?`, slug, SYSTEM_WORKSPACE_ID);

/** `ws_` and 16 random bytes, hex. */
export function newWorkspaceId(): string {
  return `ws_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Insert a workspace and its `workspace.created` event; nothing at all if the slug is taken. */
export function createWorkspaceSql(w: { id: string; slug: string; name: string; now: number; by: ActorRef; eventId: string }): SqlStatement[] {
  return [
    statement("INSERT INTO workspaces (id, slug, name, created_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", w.id, w.slug, w.name, w.now),
    auditEventSql(
      {
        workspaceId: w.id,
        actor: w.by.actor,
        action: "workspace.created",
        subjectType: "workspace",
        subjectId: w.id,
        metadata: { slug: w.slug, name: w.name, ...w.by.metadata },
        createdAt: w.now,
      },
      { ifWon: true, id: w.eventId },
    ),
  ];
}
