/**
 * The operations page's live poll, at a cost that follows what changed.
 *
 * Every transition writes an audit event (contract: exactly one per
 * transition), and audit ids are time-ordered, so the workspace's newest
 * event id is a change token: one index entry to read. A poll answers with
 *
 * - a full refresh (tiles and first page, src/admin/queries.ts) when the token
 *   moved, when a live run the tiles counted reached the instant its display
 *   state changes by time alone (`Tiles.nextFlipAt`: overdue, no heartbeat),
 *   when the tiles were capped, or on the first poll;
 * - otherwise only the live rows on screen, re-read by primary key: heartbeats
 *   (progress, last heartbeat) change them without an event, and nothing else
 *   on the page can have changed.
 *
 * The poller's state travels in its own URL (each answer renders the next
 * poller), so the server keeps nothing. The interval backs off while polls
 * find nothing new (2 s, then up to 10 s) and drops back to 2 s on any change.
 * A tampered URL can only make its own poll refresh more or less; every read
 * is still scoped by the viewer's workspace.
 */
import { z } from "zod";
import { RUN_COLUMNS, rowToRecord, type RunRecord, type RunRow } from "../runs";
import { changeTokenStatement, operationsPage, rowsReadOf, type D1Reader, type OperationsFilter, type OperationsPage } from "./queries";

const RUN_ID = /^run_[0-9A-HJKMNP-TV-Z]{26}$/;
const EVENT_ID = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;

/** What the previous answer saw, carried in the next poller's URL. */
export interface PollState {
  /** The workspace's newest audit event id then ("" if none). */
  token: string;
  /** Tiles.nextFlipAt then (ms), or null. */
  until: number | null;
  /** The live (non-terminal) runs of the first page then: what a rows-only poll re-reads. */
  live: string[];
  /** The largest `updated_at` among those runs then (ms): unchanged means the rows are unchanged. */
  stamp: number;
  /** Polls in a row that found nothing new. */
  idle: number;
}

/** The poller state as the URL carries it; anything malformed is dropped, so the poll refreshes fully. */
export const pollStateQuery = z.object({
  v: z.union([z.literal("none"), z.string().regex(EVENT_ID)]).optional().catch(undefined),
  until: z.coerce.number().int().nonnegative().optional().catch(undefined),
  live: z.string().max(30 * 27).optional().catch(undefined),
  stamp: z.coerce.number().int().nonnegative().optional().catch(undefined),
  idle: z.coerce.number().int().min(0).max(1000).optional().catch(undefined),
});

export function parsePollState(q: z.infer<typeof pollStateQuery>): PollState | null {
  if (q.v === undefined) return null;
  const live = (q.live ?? "").split(",").filter((id) => RUN_ID.test(id));
  return { token: q.v === "none" ? "" : q.v, until: q.until ?? null, live: live.slice(0, 25), stamp: q.stamp ?? 0, idle: q.idle ?? 0 };
}

/** The URL parameters of `state`, for the next poller. */
export function pollStateParams(state: PollState): Record<string, string | undefined> {
  return {
    v: state.token === "" ? "none" : state.token,
    until: state.until === null ? undefined : String(state.until),
    live: state.live.length > 0 ? state.live.join(",") : undefined,
    stamp: String(state.stamp),
    idle: String(state.idle),
  };
}

/** Seconds until the next poll: 2 s while things change, doubling after three quiet polls, at most 10 s. */
export function pollDelaySeconds(idle: number): number {
  if (idle < 3) return 2;
  return Math.min(10, 2 ** (idle - 1));
}

export type PollAnswer =
  | { kind: "full"; page: OperationsPage; state: PollState; d1: { rowsRead: number; roundTrips: number } }
  | { kind: "rows"; runs: RunRecord[]; state: PollState; d1: { rowsRead: number; roundTrips: number } };

const isLive = (r: RunRecord) => r.status !== "completed";
const stampOf = (runs: RunRecord[]) => runs.filter(isLive).reduce((m, r) => Math.max(m, r.updatedAt), 0);

/** The state a full answer leaves for the next poll. */
export function stateAfterPage(token: string, page: OperationsPage, idle: number): PollState {
  const live = page.runs.filter(isLive);
  return {
    token,
    until: page.tiles.liveCapped ? 0 : page.tiles.nextFlipAt,
    live: live.map((r) => r.id),
    stamp: stampOf(live),
    idle,
  };
}

/**
 * One poll. First round trip: the change token and the live rows on screen.
 * A second (tiles and first page) only when something besides those rows may
 * have changed. Throws what D1 throws.
 */
export async function pollOperations(db: D1Reader, workspaceId: string, f: OperationsFilter, prev: PollState | null, now: number): Promise<PollAnswer> {
  const marks = (prev?.live ?? []).map(() => "?").join(", ");
  const first = await db.batch([
    changeTokenStatement(db, workspaceId),
    ...(prev && prev.live.length > 0
      ? [db.prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE workspace_id = ? AND id IN (${marks}) ORDER BY id DESC`).bind(workspaceId, ...prev.live)]
      : []),
  ]);
  const token = (first[0]?.results[0] as { id: string } | undefined)?.id ?? "";
  const timeFlip = prev !== null && prev.until !== null && now >= prev.until;
  if (prev === null || token !== prev.token || timeFlip) {
    const page = await operationsPage(db, workspaceId, f, now);
    return {
      kind: "full",
      page,
      state: stateAfterPage(page.changeToken, page, 0),
      d1: { rowsRead: rowsReadOf(first) + page.d1.rowsRead, roundTrips: 2 },
    };
  }
  const runs = ((first[1]?.results ?? []) as RunRow[]).map(rowToRecord);
  const live = runs.filter(isLive);
  const stamp = stampOf(live);
  const changed = stamp !== prev.stamp || live.length !== prev.live.length;
  return {
    kind: "rows",
    runs,
    state: { token, until: prev.until, live: live.map((r) => r.id), stamp, idle: changed ? 0 : prev.idle + 1 },
    d1: { rowsRead: rowsReadOf(first), roundTrips: 1 },
  };
}
