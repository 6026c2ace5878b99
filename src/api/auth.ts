/**
 * API authentication: a workspace API token as a bearer credential, looked up
 * by its SHA-256 (the token itself is never stored). The principal carries the
 * workspace every query of the request is scoped by.
 */
import { createMiddleware } from "hono/factory";
import { problems } from "./problem";
import type { ContractReport } from "../lifecycle";

export interface ApiPrincipal {
  workspaceId: string;
  tokenId: string;
}

/** `contract`: the timing contract in force, set by the API app (src/api/app.ts). */
export type ApiEnv = { Bindings: Env; Variables: { principal: ApiPrincipal; contract: () => ContractReport } };

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

// The auth scheme is case-insensitive (RFC 9110 §11.1): "bearer <token>" is the same credential.
const BEARER = /^Bearer\s+([A-Za-z0-9._~+/=-]{8,512})$/i;

export const requireApiToken = createMiddleware<ApiEnv>(async (c, next) => {
  const match = BEARER.exec(c.req.header("authorization") ?? "");
  if (!match?.[1]) throw problems.unauthorized();
  const hash = await sha256Hex(match[1]);
  const row = await c.env.DB.prepare("SELECT id, workspace_id FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL")
    .bind(hash)
    .first<{ id: string; workspace_id: string }>();
  if (!row) throw problems.unauthorized();
  c.set("principal", { workspaceId: row.workspace_id, tokenId: row.id });
  await next();
});
