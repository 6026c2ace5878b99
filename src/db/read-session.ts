/**
 * The admin's and the API's reads go through a D1 session (the Sessions API),
 * so that once read replication is on for the database they can be served by
 * a nearby replica without ever going back in time:
 *
 * - A page view or an API read starts `first-primary`: its first query sees
 *   every write committed before the request (the caller's own writes
 *   included: a run just created is never a 404), and the queries after it
 *   in the same request see at least that.
 * - Each live poll continues from the bookmark of the answer before it (the
 *   poller's URL carries it), so a run shown Succeeded never shows Running
 *   again on the next poll, whichever replica answers.
 *
 * Writes never go through these sessions. Without replication (and locally)
 * every query is served by the primary, so nothing changes in behaviour.
 * Source: https://developers.cloudflare.com/d1/best-practices/read-replication/
 * (sequential consistency within a session; bookmarks carry it across
 * requests).
 */

/**
 * A D1 bookmark as D1 issues them: four hex groups (8-8-8-32), e.g.
 * `00000085-0000024c-00004c6d-8e61117bf38d7adb71b934ebbf891683`. Anything else
 * from a URL is ignored rather than handed to D1.
 */
const BOOKMARK = /^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/i;

export function isBookmark(value: string | undefined): value is string {
  return value !== undefined && BOOKMARK.test(value);
}

/** What reads go through: the D1 binding or a D1 session. Writes take the binding itself. */
export type D1Reader = Pick<D1Database, "prepare" | "batch">;

/** A read session continuing from `bookmark` if it is one, else starting at the primary. */
export function readSession(db: D1Database, bookmark?: string): D1DatabaseSession {
  return db.withSession(isBookmark(bookmark) ? bookmark : "first-primary");
}
