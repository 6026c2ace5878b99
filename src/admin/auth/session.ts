/**
 * The local dev session: a signed, HttpOnly cookie holding the user id and
 * an expiry. Signed with SESSION_SECRET (HMAC-SHA256 via hono's signed
 * cookies), so a tampered cookie is simply not a session.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";

const COOKIE = "oplife_session";
const TTL_SECONDS = 12 * 3600;

export async function readSession(c: Context, secret: string): Promise<string | null> {
  const value = await getSignedCookie(c, secret, COOKIE);
  if (typeof value !== "string") return null;
  const [userId, expires] = value.split("|");
  if (!userId || !expires || Number(expires) < Date.now()) return null;
  return userId;
}

export async function startSession(c: Context, secret: string, userId: string): Promise<void> {
  const secure = new URL(c.req.url).protocol === "https:";
  await setSignedCookie(c, COOKIE, `${userId}|${Date.now() + TTL_SECONDS * 1000}`, secret, {
    httpOnly: true,
    sameSite: "Lax",
    secure,
    path: "/",
    maxAge: TTL_SECONDS,
  });
}

export function endSession(c: Context): void {
  deleteCookie(c, COOKIE, { path: "/" });
}
