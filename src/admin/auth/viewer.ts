/**
 * Who is looking, and in which workspace. Every admin read is scoped by the
 * current membership's workspace; a run or event of another workspace is a
 * 404, a capability the role lacks is a 403.
 */
import type { Context, MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { JWTVerifyGetKey } from "jose";
import type { MembershipRole } from "../../db/schema";
import { teamKeys, verifyAccessJwt } from "./access";
import { AdminHttpError } from "./errors";
import { can, type Capability } from "./capabilities";
import { authMode, type AuthVars } from "./mode";
import { readSession } from "./session";

export interface Membership {
  workspaceId: string;
  slug: string;
  name: string;
  role: MembershipRole;
}

export interface Viewer {
  user: { id: string; email: string; name: string };
  memberships: Membership[];
  current: Membership;
}

export interface AdminDeps {
  /** The Access signing keys (tests pass a local key set; production fetches the team's). */
  accessKeys?: (teamDomain: string) => JWTVerifyGetKey;
}

export type AdminEnv = { Bindings: Env & AuthVars; Variables: { viewer: Viewer } };

export { AdminHttpError };

const WS_COOKIE = "oplife_ws";

async function loadUser(db: D1Database, by: { id: string } | { email: string }) {
  const [column, value] = "id" in by ? ["id", by.id] : ["email", by.email];
  return db
    .prepare(`SELECT id, email, name FROM users WHERE ${column} = ?`)
    .bind(value)
    .first<{ id: string; email: string; name: string }>();
}

async function loadMemberships(db: D1Database, userId: string): Promise<Membership[]> {
  const res = await db
    .prepare(
      `SELECT w.id AS workspaceId, w.slug AS slug, w.name AS name, m.role AS role
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
        WHERE m.user_id = ? ORDER BY w.name`,
    )
    .bind(userId)
    .all<Membership>();
  return res.results;
}

export function requireViewer(deps: AdminDeps): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    const mode = authMode(c.env);
    let user: { id: string; email: string; name: string } | null = null;
    if (mode.kind === "misconfigured") throw new AdminHttpError(503, "Admin sign-in is not configured", mode.problem);
    if (mode.kind === "access") {
      const email = await verifyAccessJwt(c.req.header("cf-access-jwt-assertion"), {
        teamDomain: mode.teamDomain,
        audience: mode.audience,
        keys: (deps.accessKeys ?? teamKeys)(mode.teamDomain),
      });
      if (!email) throw new AdminHttpError(401, "Not signed in", "Sign in through Cloudflare Access to use the admin.");
      user = await loadUser(c.env.DB, { email });
      if (!user) throw new AdminHttpError(403, "No account", "Your identity is verified, but no user of this system has that email.");
    } else {
      user = await readSession(c, mode.sessionSecret);
      if (!user) throw new AdminHttpError(401, "Not signed in", "Sign in to use the admin.");
    }
    const memberships = await loadMemberships(c.env.DB, user.id);
    const wanted = getCookie(c, WS_COOKIE);
    const current = memberships.find((m) => m.workspaceId === wanted) ?? memberships[0];
    if (!current) throw new AdminHttpError(403, "No workspace", "You are not a member of any workspace yet.");
    c.set("viewer", { user, memberships, current });
    await next();
  };
}

export function requireCapability(capability: Capability): MiddlewareHandler<AdminEnv> {
  return async (c, next) => {
    if (!can(c.get("viewer").current.role, capability)) {
      throw new AdminHttpError(403, "Not allowed", `Your role in this workspace cannot ${describe(capability)}.`);
    }
    await next();
  };
}

function describe(capability: Capability): string {
  switch (capability) {
    case "runs:read":
      return "view runs";
    case "runs:diagnostics":
      return "view run diagnostics";
    case "runs:cancel":
      return "cancel runs (owners and operators)";
    case "audit:read":
      return "read the audit log";
    case "lifecycle:read":
      return "view lifecycle policies";
    case "settings:manage":
      return "manage API tokens and members (owners only)";
  }
}

/** Switch the current workspace, if the viewer is a member of it. */
export function selectWorkspace(c: Context<AdminEnv>, workspaceId: string): boolean {
  const member = c.get("viewer").memberships.some((m) => m.workspaceId === workspaceId);
  if (member) setCookie(c, WS_COOKIE, workspaceId, { httpOnly: true, sameSite: "Lax", path: "/", secure: new URL(c.req.url).protocol === "https:" });
  return member;
}
