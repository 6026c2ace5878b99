/**
 * The operations page's data: summary tiles and one page of runs, fetched in
 * a single D1 batch (one round trip). Tiles read a bounded number of rows
 * (src/admin/tiles.ts) with the very conditions the filters they link to use;
 * the listing reads at most one page plus one row, and a search by run id is
 * one primary-key lookup scoped by the workspace.
 */
import { DEFAULT_SETTINGS, DISPLAY_STATES, type DisplayStateKind } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { displayStateCondition, listRunsQuery, minIdAt, RUN_COLUMNS, rowToRecord, type RunRecord, type RunRow, type SqlFragment } from "../runs";
import type { D1Reader } from "../db/read-session";
import { anyOf, DISPLAY_GROUPS, tilesOf, tilesStatements, type Tiles } from "./tiles";

export { DISPLAY_GROUPS, type Tiles } from "./tiles";

export type { D1Reader } from "../db/read-session";

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


/** The smallest run id minted at `ms` (ULID time prefix + zeros). */
export function minRunIdAt(ms: number): string {
  return minIdAt("run", ms);
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

export interface OperationsPage {
  tiles: Tiles;
  /** The workspace's newest audit event id ("" if none): what the next live poll compares with (src/admin/live.ts). */
  changeToken: string;
  runs: RunRecord[];
  nextCursor: string | null;
  d1: { rowsRead: number; roundTrips: number };
}

/**
 * The workspace's newest audit event id: the live poll's change token, as
 * every transition writes exactly one event (ids are time-ordered). One entry
 * of the (workspace_id, id) index.
 */
export function changeTokenStatement(db: D1Reader, workspaceId: string): D1PreparedStatement {
  return db.prepare(CHANGE_TOKEN_SQL).bind(workspaceId);
}

export const CHANGE_TOKEN_SQL = "SELECT id FROM audit_events WHERE workspace_id = ? ORDER BY id DESC LIMIT 1";

/** Rows read by every statement of a batch, as D1 reports them. */
export function rowsReadOf(results: D1Result[]): number {
  return results.reduce((n, r) => n + (r.meta.rows_read ?? 0), 0);
}

/**
 * Tiles and one page in one D1 batch (one round trip): the tiles' two
 * statements (src/admin/tiles.ts), the listing, or the primary-key lookup of
 * a search by id (another workspace's run is simply not found), and the
 * change token the live poll starts from (one index entry).
 */
export async function operationsPage(db: D1Reader, workspaceId: string, f: OperationsFilter, now: number): Promise<OperationsPage> {
  const list =
    f.runId !== undefined
      ? { sql: `SELECT ${RUN_COLUMNS} FROM operation_runs WHERE id = ? AND workspace_id = ?`, params: [f.runId, workspaceId] }
      : listingQuery(workspaceId, f, now);
  const results = await db.batch([
    ...tilesStatements(db, workspaceId, now),
    db.prepare(list.sql).bind(...list.params),
    changeTokenStatement(db, workspaceId),
  ]);
  const [liveRes, failuresRes, listRes, tokenRes] = results;
  const rows = (listRes?.results ?? []) as RunRow[];
  const page = f.runId !== undefined ? rows : rows.slice(0, f.limit);
  return {
    tiles: tilesOf(liveRes, failuresRes),
    changeToken: (tokenRes?.results[0] as { id: string } | undefined)?.id ?? "",
    runs: page.map(rowToRecord),
    nextCursor: f.runId === undefined && rows.length > f.limit && page.length > 0 ? page[page.length - 1]!.id : null,
    d1: { rowsRead: rowsReadOf(results), roundTrips: 1 },
  };
}
