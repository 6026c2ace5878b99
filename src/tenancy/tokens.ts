/**
 * Workspace API tokens: minted here, shown once, stored only as their
 * SHA-256 (hex). A token is revoked, never deleted, so its name and last use
 * stay readable; a revoked token's name can be given to a new one (rotation).
 */
import { statement, type SqlStatement } from "../db/statements";
import { auditEventSql } from "../runs/audit-event";
import { workspaceIdExpr, type ActorRef, type WorkspaceRef } from "./refs";

/** SHA-256 of the token's UTF-8 bytes, lowercase hex: the only form of a token the database holds. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function base64url(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

/** A new bearer token: `olt_` and 32 random bytes, base64url (256 bits, as the seed's demo token). */
export function newApiToken(): string {
  return `olt_${base64url(crypto.getRandomValues(new Uint8Array(32)))}`;
}

/** `tok_` and 16 random bytes, hex: not derived from the token, so the id reveals nothing about it. */
export function newTokenId(): string {
  return `tok_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Ms after a recorded use within which another use is not written again (one write a minute at most per token). */
export const LAST_USED_RESOLUTION_MS = 60_000;

export interface TokenRow {
  id: string;
  name: string;
  created_at: number;
  last_used_at: number | null;
  revoked_at: number | null;
}

/** A workspace's tokens, live first, newest first. */
const TOKEN_COLUMNS = "id, name, created_at, last_used_at, revoked_at";

export function listTokensSql(ws: WorkspaceRef): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(
    `SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ${w.sql} ORDER BY revoked_at IS NOT NULL, created_at DESC, id`,
    w.param,
  );
}

export function liveTokenByNameSql(ws: WorkspaceRef, name: string): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ${w.sql} AND name = ? AND revoked_at IS NULL`, w.param, name);
}

export function tokenByIdSql(ws: WorkspaceRef, tokenId: string): SqlStatement {
  const w = workspaceIdExpr(ws);
  return statement(`SELECT ${TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ${w.sql} AND id = ?`, w.param, tokenId);
}

/**
 * Insert a token and its `api_token.created` event. The insert does nothing
 * when the workspace already has a live token of that name (the partial
 * unique index), and then neither does the event: the event with `eventId`
 * exists exactly when the token was created.
 */
export function createTokenSql(t: {
  id: string;
  workspaceId: string;
  name: string;
  tokenHash: string;
  now: number;
  by: ActorRef;
  eventId: string;
}): SqlStatement[] {
  return [
    statement(
      "INSERT INTO api_tokens (id, workspace_id, name, token_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT DO NOTHING",
      t.id,
      t.workspaceId,
      t.name,
      t.tokenHash,
      t.now,
    ),
    auditEventSql(
      {
        workspaceId: t.workspaceId,
        actor: t.by.actor,
        action: "api_token.created",
        subjectType: "api_token",
        subjectId: t.id,
        metadata: { name: t.name, ...t.by.metadata },
        createdAt: t.now,
      },
      { ifWon: true, id: t.eventId },
    ),
  ];
}

/** Revoke a live token of the workspace, with its `api_token.revoked` event (only if it was live). */
export function revokeTokenSql(t: { workspaceId: string; id: string; name: string; now: number; by: ActorRef; eventId: string }): SqlStatement[] {
  return [
    statement("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND workspace_id = ? AND revoked_at IS NULL", t.now, t.id, t.workspaceId),
    auditEventSql(
      {
        workspaceId: t.workspaceId,
        actor: t.by.actor,
        action: "api_token.revoked",
        subjectType: "api_token",
        subjectId: t.id,
        metadata: { name: t.name, ...t.by.metadata },
        createdAt: t.now,
      },
      { ifWon: true, id: t.eventId },
    ),
  ];
}

/**
 * Record a use, at most once per LAST_USED_RESOLUTION_MS: the condition makes
 * a use within that window a no-op read, not a write on every request.
 */
export const touchTokenSql = (tokenId: string, now: number): SqlStatement =>
  statement(
    "UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)",
    now,
    tokenId,
    now - LAST_USED_RESOLUTION_MS,
  );
