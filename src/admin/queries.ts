/**
 * The operations page's data: summary tiles and one page of runs, fetched in
 * a single D1 batch (one round trip). Tiles count live runs by display state
 * in SQL and the failed runs created in the last 24 h through the outcome
 * index, with the very conditions the filters they link to use; the listing
 * reads at most one page plus one row, and a search by run id is one
 * primary-key lookup scoped by the workspace.
 */
import { DEFAULT_SETTINGS, DISPLAY_STATES, type DisplayStateKind } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { displayStateCondition, listRunsQuery, minIdAt, RUN_COLUMNS, rowToRecord, type RunRecord, type RunRow, type SqlFragment } from "../runs";

export interface Tiles {
  /** Live work: queued, retrying, running with a fresh heartbeat, and cancelling (being stopped). */
  active: number;
  /** Of the active runs, those waiting for their next attempt. */
  retrying: number;
  stale: number;
  /** Failed runs created in the last 24 h (what `display=failures&range=24h` lists). */
  failures24h: number;
  /** Of those, the ones the lifecycle machinery decided. */
  reconciledFailures24h: number;
}

/** Filters that select several display states at once (what the tiles link to). */
export const DISPLAY_GROUPS = {
  active: ["queued", "retrying", "running", "cancelling"],
  stale: ["queued_overdue", "running_stale"],
  failures: ["failed", "failed_reconciled"],
} as const satisfies Record<string, readonly DisplayStateKind[]>;

export type DisplayFilter = DisplayStateKind | keyof typeof DISPLAY_GROUPS;
export const DISPLAY_FILTERS: [DisplayFilter, ...DisplayFilter[]] = ["active", "stale", "failures", ...DISPLAY_STATES];

export interface OperationsFilter {
  display?: DisplayFilter;
  /** A full run id: only that run, if it is this workspace's. */
  runId?: string;
  type?: string;
  /** Only runs created at or after this time (via the id's time prefix, so the index still serves it). */
  since?: number;
  before?: string;
  limit: number;
}

const DAY_MS = 86_400_000;

/** The smallest run id minted at `ms` (ULID time prefix + zeros). */
export function minRunIdAt(ms: number): string {
  return minIdAt("run", ms);
}

// Live runs are exactly the pending ones: the (workspace_id, outcome, id) index ranges over them.
const LIVE_STATUSES = "outcome = 'pending'";

function anyOf(parts: SqlFragment[]): SqlFragment {
  return { sql: parts.map((p) => `(${p.sql})`).join(" OR "), params: parts.flatMap((p) => p.params) };
}

/** Which status each live display state has: a live group's listing is one index range per status. */
const STATUS_OF: Partial<Record<DisplayStateKind, "queued" | "running">> = {
  queued: "queued",
  retrying: "queued",
  queued_overdue: "queued",
  running: "running",
  running_stale: "running",
  cancelling: "running",
};

/**
 * The listing of one page. A single display state is one condition on the
 * listing index; "failures" is the outcome index's. A group of live states
 * (active, stale) is one keyset range per status, each served by the
 * (workspace, outcome 'pending', id) index in id order, merged: with `status IN (…)`
 * SQLite would rather walk the whole workspace in id order than sort, and
 * read the history to find a few live runs.
 */
export function listingQuery(workspaceId: string, f: OperationsFilter, now: number): SqlFragment {
  const policies = registeredPolicies();
  const cond = (k: DisplayStateKind) => displayStateCondition(k, policies, DEFAULT_SETTINGS, now);
  const common: SqlFragment[] = f.since !== undefined ? [{ sql: "id >= ?", params: [minRunIdAt(f.since)] }] : [];
  const page = (status: "queued" | "running" | undefined, extra: SqlFragment[]) => {
    const all = [...extra, ...common];
    const where = all.length > 0 ? { sql: all.map((w) => `(${w.sql})`).join(" AND "), params: all.flatMap((w) => w.params) } : undefined;
    return listRunsQuery(workspaceId, {
      limit: f.limit,
      ...(status ? { status } : {}),
      ...(f.type ? { type: f.type } : {}),
      ...(f.before ? { before: f.before } : {}),
      ...(where ? { where } : {}),
    });
  };
  if (f.display === "active" || f.display === "stale") {
    const kinds: readonly DisplayStateKind[] = DISPLAY_GROUPS[f.display];
    const branches = (["queued", "running"] as const).map((status) => page(status, [anyOf(kinds.filter((k) => STATUS_OF[k] === status).map(cond))]));
    return {
      sql: `SELECT * FROM (${branches[0]!.sql}) UNION ALL SELECT * FROM (${branches[1]!.sql}) ORDER BY id DESC LIMIT ?`,
      params: [...branches[0]!.params, ...branches[1]!.params, f.limit + 1],
    };
  }
  if (f.display === "failures") return page(undefined, [{ sql: "outcome = 'failed'", params: [] }]);
  return page(undefined, f.display ? [cond(f.display)] : []);
}

function tilesQuery(workspaceId: string, now: number): SqlFragment {
  const policies = registeredPolicies();
  const cond = (k: DisplayStateKind) => displayStateCondition(k, policies, DEFAULT_SETTINGS, now);
  const active = anyOf(DISPLAY_GROUPS.active.map(cond));
  const retrying = cond("retrying");
  const stale = anyOf(DISPLAY_GROUPS.stale.map(cond));
  const reconciled = cond("failed_reconciled");
  const since = minRunIdAt(now - DAY_MS);
  // Unqualified columns in the subqueries name their own `f` rows (SQLite resolves to the innermost scope).
  const sql = `SELECT
      COALESCE(SUM(CASE WHEN ${active.sql} THEN 1 ELSE 0 END), 0) AS active,
      COALESCE(SUM(CASE WHEN ${retrying.sql} THEN 1 ELSE 0 END), 0) AS retrying,
      COALESCE(SUM(CASE WHEN ${stale.sql} THEN 1 ELSE 0 END), 0) AS stale,
      (SELECT COUNT(*) FROM operation_runs f WHERE f.workspace_id = ? AND f.outcome = 'failed' AND f.id >= ?) AS failures24h,
      (SELECT COUNT(*) FROM operation_runs f WHERE f.workspace_id = ? AND f.id >= ? AND (${reconciled.sql})) AS reconciledFailures24h
    FROM operation_runs WHERE workspace_id = ? AND ${LIVE_STATUSES}`;
  const params = [
    ...active.params,
    ...retrying.params,
    ...stale.params,
    workspaceId,
    since,
    workspaceId,
    since,
    ...reconciled.params,
    workspaceId,
  ];
  return { sql, params };
}

function tilesOf(res: D1Result | undefined): Tiles {
  return (res?.results[0] as Tiles | undefined) ?? { active: 0, retrying: 0, stale: 0, failures24h: 0, reconciledFailures24h: 0 };
}

export interface OperationsPage {
  tiles: Tiles;
  runs: RunRecord[];
  nextCursor: string | null;
  d1: { rowsRead: number; roundTrips: number };
}

export async function operationsPage(db: D1Database, workspaceId: string, f: OperationsFilter, now: number): Promise<OperationsPage> {
  const t = tilesQuery(workspaceId, now);
  if (f.runId !== undefined) {
    // A search by id: the primary key, scoped by the workspace (another workspace's run is simply not found).
    const [tilesRes, runRes] = await db.batch([
      db.prepare(t.sql).bind(...t.params),
      db.prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE id = ? AND workspace_id = ?`).bind(f.runId, workspaceId),
    ]);
    return {
      tiles: tilesOf(tilesRes),
      runs: ((runRes?.results ?? []) as RunRow[]).map(rowToRecord),
      nextCursor: null,
      d1: { rowsRead: (tilesRes?.meta.rows_read ?? 0) + (runRes?.meta.rows_read ?? 0), roundTrips: 1 },
    };
  }
  const list = listingQuery(workspaceId, f, now);
  const [tilesRes, listRes] = await db.batch([
    db.prepare(t.sql).bind(...t.params),
    db.prepare(list.sql).bind(...list.params),
  ]);
  const rows = (listRes?.results ?? []) as RunRow[];
  const page = rows.slice(0, f.limit);
  return {
    tiles: tilesOf(tilesRes),
    runs: page.map(rowToRecord),
    nextCursor: rows.length > f.limit && page.length > 0 ? page[page.length - 1]!.id : null,
    d1: { rowsRead: (tilesRes?.meta.rows_read ?? 0) + (listRes?.meta.rows_read ?? 0), roundTrips: 1 },
  };
}
