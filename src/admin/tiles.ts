/**
 * The operations page's summary tiles at a cost that does not grow with the
 * workspace: at most LIVE_SCAN live runs for Active, Retrying and Stale,
 * and at most 25 hourly counters for the two "failures · created in 24 h"
 * tiles (src/runs/failure-counts.ts). Before, the failure tiles re-counted
 * every failed run of the day: 4,194 rows per page view on the bench's
 * 1M-run workspace, and again on every 2 s poll.
 *
 * Live counts past the scan are shown as "40+" (like a capped badge), never as
 * a smaller exact number. The scan reads the *oldest* live runs first: those
 * are the ones that go stale, so a stale run is the last thing a cap hides.
 * One scan over the live runs (outcome 'pending', queued and running alike):
 * the (workspace_id, outcome, id) index ranges over exactly them in id order,
 * and there is no status index to range over each status alone (issue 12
 * dropped it to save a write per transition).
 */
import { DEFAULT_SETTINGS, type DisplayStateKind } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { displayStateCondition, failureCountsQuery, hourStart, type SqlFragment } from "../runs";

/** Live runs (queued and running) read by the tiles, oldest first; past it a tile reads "40+". */
export const LIVE_SCAN = 40;
const DAY_MS = 86_400_000;

export interface Tiles {
  /** Healthy live work: queued, retrying and running with a fresh heartbeat. */
  active: number;
  /** Of the active runs, those waiting for their next attempt. */
  retrying: number;
  stale: number;
  /** Failed runs created since the top of the hour 24 h ago (what `display=failures&range=24h` lists). */
  failures24h: number;
  /** Of those, the ones the lifecycle machinery decided. */
  reconciledFailures24h: number;
  /** More live runs exist than the tiles read: active, retrying and stale are lower bounds (shown "N+"). */
  liveCapped: boolean;
  /**
   * The first instant (ms) at which a live run the tiles read changes display
   * state by time alone (a queued run becomes overdue, a running one loses its
   * fresh heartbeat), or null if none will. Until then, and while no
   * transition happens, the tiles cannot change.
   */
  nextFlipAt: number | null;
}

/** The start of the failure tiles' window, and of the `24h` range they link to: the top of the hour 24 h ago. */
export function failureWindowStart(now: number): number {
  return hourStart(now - DAY_MS);
}

/** Filters that select several display states at once (what the tiles link to). */
export const DISPLAY_GROUPS = {
  active: ["queued", "retrying", "running", "cancelling"],
  stale: ["queued_overdue", "running_stale"],
  failures: ["failed", "failed_reconciled"],
} as const satisfies Record<string, readonly DisplayStateKind[]>;

/** Conditions joined by OR. */
export function anyOf(parts: SqlFragment[]): SqlFragment {
  return { sql: parts.map((p) => `(${p.sql})`).join(" OR "), params: parts.flatMap((p) => p.params) };
}

/**
 * When a fresh running run stops being fresh: its last sign of life plus its
 * type's threshold (the one displayStateCondition uses), plus 1 ms. NULL for
 * a type no longer registered (never fresh, so it never flips).
 */
function runningFlipAt(): SqlFragment {
  const entries = Object.entries(registeredPolicies());
  if (entries.length === 0) return { sql: "NULL", params: [] };
  const cases = entries.map(() => "WHEN ? THEN ?").join(" ");
  const params = entries.flatMap(([type, p]) => [type, p.heartbeatTimeoutMs + DEFAULT_SETTINGS.heartbeatFlushIntervalMs]);
  return { sql: `COALESCE(last_heartbeat_at, started_at, created_at) + (CASE type ${cases} END) + 1`, params };
}

/** Active, retrying and stale among the oldest LIVE_SCAN live runs. */
export function liveTilesQuery(workspaceId: string, now: number): SqlFragment {
  const cond = (k: DisplayStateKind) => displayStateCondition(k, registeredPolicies(), DEFAULT_SETTINGS, now);
  const active = anyOf(DISPLAY_GROUPS.active.map(cond));
  const retrying = cond("retrying");
  const stale = anyOf(DISPLAY_GROUPS.stale.map(cond));
  const running = cond("running");
  const flip = runningFlipAt();
  const scan = `SELECT status, outcome, attempt, deadline_at, type, last_heartbeat_at, started_at, created_at, cancel_requested_at
       FROM operation_runs WHERE workspace_id = ? AND outcome = 'pending' ORDER BY id LIMIT ${LIVE_SCAN}`;
  const sql = `SELECT
      COALESCE(SUM(CASE WHEN ${active.sql} THEN 1 ELSE 0 END), 0) AS active,
      COALESCE(SUM(CASE WHEN ${retrying.sql} THEN 1 ELSE 0 END), 0) AS retrying,
      COALESCE(SUM(CASE WHEN ${stale.sql} THEN 1 ELSE 0 END), 0) AS stale,
      COUNT(*) AS liveRead,
      MIN(CASE WHEN status = 'queued' AND deadline_at >= ? THEN deadline_at + 1
               WHEN ${running.sql} THEN ${flip.sql} END) AS nextFlipAt
    FROM (${scan})`;
  return { sql, params: [...active.params, ...retrying.params, ...stale.params, now, ...running.params, ...flip.params, workspaceId] };
}

interface LiveRow {
  active: number;
  retrying: number;
  stale: number;
  liveRead: number;
  nextFlipAt: number | null;
}

/** The tiles' statements, in the order tilesOf reads their results. */
export function tilesStatements(db: Pick<D1Database, "prepare">, workspaceId: string, now: number): D1PreparedStatement[] {
  const live = liveTilesQuery(workspaceId, now);
  const failures = failureCountsQuery(workspaceId, failureWindowStart(now));
  return [db.prepare(live.sql).bind(...live.params), db.prepare(failures.sql).bind(...failures.params)];
}

export function tilesOf(live: D1Result | undefined, failures: D1Result | undefined): Tiles {
  const l = live?.results[0] as LiveRow | undefined;
  const f = failures?.results[0] as { failed: number; reconciled: number } | undefined;
  return {
    active: l?.active ?? 0,
    retrying: l?.retrying ?? 0,
    stale: l?.stale ?? 0,
    failures24h: f?.failed ?? 0,
    reconciledFailures24h: f?.reconciled ?? 0,
    liveCapped: (l?.liveRead ?? 0) >= LIVE_SCAN,
    nextFlipAt: l?.nextFlipAt ?? null,
  };
}
