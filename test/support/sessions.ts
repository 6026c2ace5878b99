/**
 * Dev sign-in sessions for the admin tests: a row in `admin_sessions` and the
 * signed cookie naming it, as the server would make them, for expiry and
 * forgery cases the sign-in form cannot produce.
 */
import { env } from "cloudflare:workers";
import { mintSessionCookie } from "./admin";

export function sessionIdFor(): string {
  return `ses_${[...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** A session row for `userId` (expiring in a minute unless told) and its signed cookie (`oplife_session=…`). */
export async function mintSession(userId: string, opts: { expiresAt?: number; secret?: string; id?: string } = {}): Promise<string> {
  const id = opts.id ?? sessionIdFor();
  const now = Date.now();
  await env.DB.prepare("INSERT INTO admin_sessions (id, user_id, created_at, expires_at, ended_at) VALUES (?, ?, ?, ?, NULL)")
    .bind(id, userId, now, opts.expiresAt ?? now + 60_000)
    .run();
  return mintSessionCookie(id, ...(opts.secret ? [opts.secret] : []));
}
