/** How tenancy statements name a workspace and an actor. */
import type { Actor } from "../runs/audit-event";
import { SYSTEM_WORKSPACE_ID } from "../runs/audit-event";

/**
 * A workspace by id (the admin knows it) or by slug (the CLI's input, so a
 * command can read everything it needs in one round trip).
 */
export type WorkspaceRef = { id: string } | { slug: string };

/** A SQL expression for the workspace's id, and its one parameter. The system workspace has no slug here. */
export function workspaceIdExpr(ref: WorkspaceRef): { sql: string; param: string } {
  return "id" in ref
    ? { sql: "?", param: ref.id }
    : { sql: `(SELECT id FROM workspaces WHERE slug = ? AND id <> '${SYSTEM_WORKSPACE_ID}')`, param: ref.slug };
}

export interface ActorRef {
  actor: Actor;
  /** Ids of the actor, kept in the event's metadata as `actorId` (a key the redaction keeps: `tokenId` would read as a secret). */
  metadata: Record<string, string>;
}
