/**
 * API authentication: a workspace API token as a bearer credential, looked up
 * by its SHA-256 (the token itself is never stored). The principal carries the
 * workspace every query of the request is scoped by, and the token's name,
 * which audit events show as the actor.
 */
import { createMiddleware } from "hono/factory";
import { prepared } from "../db/d1";
import { log } from "../log";
import { LAST_USED_RESOLUTION_MS, sha256Hex, touchTokenSql } from "../tenancy/tokens";
import { problems } from "./problem";
import type { ContractReport } from "../lifecycle";

export { sha256Hex };

export interface ApiPrincipal {
  workspaceId: string;
  tokenId: string;
  tokenName: string;
}

/** `contract`: the timing contract in force, set by the API app (src/api/app.ts). */
export type ApiEnv = { Bindings: Env; Variables: { principal: ApiPrincipal; contract: () => ContractReport } };

// The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer <token>" is the same credential.
const BEARER = /^Bearer\s+(\S+)$/i;
/** The token's own syntax (RFC 6750 §2.1 b64token, 8–512 characters). */
const TOKEN = /^[A-Za-z0-9._~+/=-]{8,512}$/;

/**
 * The principal an API token stands for, or null when it is malformed, unknown
 * or revoked. The one lookup behind both the HTTP API's bearer header and the
 * RPC entrypoint's token argument (src/rpc/entrypoint.ts).
 */
export async function principalForToken(db: D1Database, token: string): Promise<ApiPrincipal | null> {
  if (!TOKEN.test(token)) return null;
  const hash = await sha256Hex(token);
  const row = await db
    .prepare("SELECT id, workspace_id, name, last_used_at FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL")
    .bind(hash)
    .first<{ id: string; workspace_id: string; name: string; last_used_at: number | null }>();
  if (!row) return null;
  // "Last used" for the owners' token list, written at most once a minute per token: checked
  // here so most requests send no write at all, and again in the statement for concurrent
  // ones. A failure to record it must not fail the request it describes.
  const now = Date.now();
  if (row.last_used_at === null || row.last_used_at <= now - LAST_USED_RESOLUTION_MS) {
    try {
      await prepared(db, touchTokenSql(row.id, now)).run();
    } catch (error) {
      log.warn("api.token_last_used_not_recorded", { actorId: row.id, error });
    }
  }
  return { workspaceId: row.workspace_id, tokenId: row.id, tokenName: row.name };
}

export const requireApiToken = createMiddleware<ApiEnv>(async (c, next) => {
  // Already authenticated by a router mounted at the same path (e.g. /runs and the run actions): one lookup per request.
  if (c.get("principal")) return next();
  const match = BEARER.exec(c.req.header("authorization") ?? "");
  const principal = match?.[1] ? await principalForToken(c.env.DB, match[1]) : null;
  if (!principal) throw problems.unauthorized();
  c.set("principal", principal);
  await next();
});
