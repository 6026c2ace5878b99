/**
 * The local dev session: a row in `admin_sessions`, named by a signed,
 * HttpOnly cookie (HMAC-SHA256 with SESSION_SECRET via hono's signed
 * cookies, so a tampered cookie is simply not a session). The row, not the
 * cookie, says whether the session lives: sign-out ends it on the server, so
 * a copy of the cookie replayed afterwards is refused, where a cookie alone
 * would have worked until it expired. Times in ms since the epoch.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";

const COOKIE = "oplife_session";
const TTL_SECONDS = 12 * 3600;
const SESSION_ID = /^ses_[0-9a-f]{32}$/;

// Any app whose bindings include the D1 database (the admin's, a test host's).
type DbEnv = { Bindings: { DB: D1Database } };

function newSessionId(): string {
  return `ses_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

async function sessionId<E extends DbEnv>(c: Context<E>, secret: string): Promise<string | null> {
  const value = await getSignedCookie(c, secret, COOKIE);
  return typeof value === "string" && SESSION_ID.test(value) ? value : null;
}

export interface SessionUser {
  id: string;
  email: string;
  name: string;
}

/**
 * The signed-in user, or null: no cookie, a forged one, or a session that
 * ended or expired. One query: the session and its user together.
 */
export async function readSession<E extends DbEnv>(c: Context<E>, secret: string): Promise<SessionUser | null> {
  const id = await sessionId(c, secret);
  if (!id) return null;
  return c.env.DB.prepare(
    `SELECT u.id, u.email, u.name FROM admin_sessions s JOIN users u ON u.id = s.user_id
      WHERE s.id = ? AND s.ended_at IS NULL AND s.expires_at > ?`,
  )
    .bind(id, Date.now())
    .first<SessionUser>();
}

export async function startSession<E extends DbEnv>(c: Context<E>, secret: string, userId: string): Promise<void> {
  const id = newSessionId();
  const now = Date.now();
  await c.env.DB.prepare("INSERT INTO admin_sessions (id, user_id, created_at, expires_at, ended_at) VALUES (?, ?, ?, ?, NULL)")
    .bind(id, userId, now, now + TTL_SECONDS * 1000)
    .run();
  await setSignedCookie(c, COOKIE, id, secret, {
    httpOnly: true,
    sameSite: "Lax",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: TTL_SECONDS,
  });
}

/** End the session for good (when the cookie names one) and delete the cookie. */
export async function endSession<E extends DbEnv>(c: Context<E>, secret: string | null): Promise<void> {
  const id = secret ? await sessionId(c, secret) : null;
  if (id) await c.env.DB.prepare("UPDATE admin_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL").bind(Date.now(), id).run();
  deleteCookie(c, COOKIE, { path: "/" });
}
