/**
 * The operations page's data: summary tiles and one page of runs, fetched in
 * a single D1 batch (one round trip). Tiles count live runs by display state
 * in SQL and failures of the last 24 h through a partial index; the listing
 * reads at most one page plus one row.
 */
import { DEFAULT_SETTINGS, type DisplayStateKind } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { displayStateCondition, listRunsQuery, rowToRecord, type RunRecord, type RunRow, type SqlFragment } from "../runs";

export interface Tiles {
  active: number;
  stale: number;
  failures24h: number;
  reconciledFailures24h: number;
}

export interface OperationsFilter {
  display?: DisplayStateKind;
  type?: string;
  /** Only runs created at or after this time (via the id's time prefix, so the index still serves it). */
  since?: number;
  before?: string;
  limit: number;
}

const DAY_MS = 86_400_000;
const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The smallest run id minted at `ms` (ULID time prefix + zeros). */
export function minRunIdAt(ms: number): string {
  let t = Math.max(0, Math.floor(ms));
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return `run_${out}${"0".repeat(16)}`;
}

function tilesQuery(workspaceId: string, now: number): SqlFragment {
  const policies = registeredPolicies();
  const cond = (k: DisplayStateKind) => displayStateCondition(k, policies, DEFAULT_SETTINGS, now);
  const parts: SqlFragment[] = [cond("queued"), cond("running"), cond("queued_overdue"), cond("running_stale")];
  const sql = `SELECT
      COALESCE(SUM(CASE WHEN (${parts[0]!.sql}) OR (${parts[1]!.sql}) THEN 1 ELSE 0 END), 0) AS active,
      COALESCE(SUM(CASE WHEN (${parts[2]!.sql}) OR (${parts[3]!.sql}) THEN 1 ELSE 0 END), 0) AS stale,
      (SELECT COUNT(*) FROM operation_runs f WHERE f.workspace_id = ? AND f.status = 'completed' AND f.outcome = 'failed' AND f.completed_at >= ?) AS failures24h,
      (SELECT COUNT(*) FROM operation_runs f WHERE f.workspace_id = ? AND f.status = 'completed' AND f.outcome = 'failed' AND f.completed_at >= ? AND f.reconciled_by IS NOT NULL) AS reconciledFailures24h
    FROM operation_runs WHERE workspace_id = ? AND status IN ('queued', 'running')`;
  const params = [
    ...parts.flatMap((p) => p.params),
    workspaceId,
    now - DAY_MS,
    workspaceId,
    now - DAY_MS,
    workspaceId,
  ];
  return { sql, params };
}

export interface OperationsPage {
  tiles: Tiles;
  runs: RunRecord[];
  nextCursor: string | null;
  d1: { rowsRead: number; roundTrips: number };
}

export async function operationsPage(db: D1Database, workspaceId: string, f: OperationsFilter, now: number): Promise<OperationsPage> {
  const t = tilesQuery(workspaceId, now);
  const policies = registeredPolicies();
  const where: SqlFragment[] = [];
  if (f.display) where.push(displayStateCondition(f.display, policies, DEFAULT_SETTINGS, now));
  if (f.since !== undefined) where.push({ sql: "id >= ?", params: [minRunIdAt(f.since)] });
  const extra =
    where.length > 0 ? { sql: where.map((w) => `(${w.sql})`).join(" AND "), params: where.flatMap((w) => w.params) } : undefined;
  const list = listRunsQuery(workspaceId, {
    limit: f.limit,
    ...(f.type ? { type: f.type } : {}),
    ...(f.before ? { before: f.before } : {}),
    ...(extra ? { where: extra } : {}),
  });
  const [tilesRes, listRes] = await db.batch([
    db.prepare(t.sql).bind(...t.params),
    db.prepare(list.sql).bind(...list.params),
  ]);
  const tiles = (tilesRes?.results[0] as Tiles | undefined) ?? { active: 0, stale: 0, failures24h: 0, reconciledFailures24h: 0 };
  const rows = (listRes?.results ?? []) as RunRow[];
  const page = rows.slice(0, f.limit);
  return {
    tiles,
    runs: page.map(rowToRecord),
    nextCursor: rows.length > f.limit && page.length > 0 ? page[page.length - 1]!.id : null,
    d1: { rowsRead: (tilesRes?.meta.rows_read ?? 0) + (listRes?.meta.rows_read ?? 0), roundTrips: 1 },
  };
}
