/**
 * Read queries over `operation_runs`. Each names the index it is written for;
 * `test/runs/query-plan.test.ts` holds them to it with EXPLAIN QUERY PLAN.
 */
import type { RunStatus } from "../lifecycle";
import type { D1Reader } from "../db/read-session";
import { RUN_COLUMNS, rowToRecord, type RunRecord, type RunRow } from "./records";


/**
 * Overdue live runs, oldest deadline first, after the keyset cursor
 * `(deadline_at, id)` (pass `-1, ''` for the first page): a page of runs the
 * sweep could not resolve is never read again in the same sweep, so it cannot
 * starve the runs behind it. The `status <> 'completed'` term must match the
 * partial index's WHERE clause for SQLite to use it, which is what keeps rows
 * read proportional to overdue runs, not to history.
 */
export const OVERDUE_RUNS_SQL = `SELECT ${RUN_COLUMNS} FROM operation_runs
  WHERE status <> 'completed' AND deadline_at < ?1 AND (deadline_at > ?3 OR (deadline_at = ?3 AND id > ?4))
  ORDER BY deadline_at, id LIMIT ?2`;

/** Where the next page of overdue runs starts (exclusive). */
export interface OverdueCursor {
  deadlineAt: number;
  id: string;
}

export async function overdueRuns(
  db: D1Database,
  before: number,
  limit: number,
  after: OverdueCursor = { deadlineAt: -1, id: "" },
): Promise<{ runs: RunRecord[]; rowsRead: number }> {
  const res = await db.prepare(OVERDUE_RUNS_SQL).bind(before, limit, after.deadlineAt, after.id).all<RunRow>();
  return { runs: res.results.map(rowToRecord), rowsRead: res.meta.rows_read };
}

export interface ListRunsFilter {
  status?: RunStatus;
  type?: string;
  /** Exclusive: runs older than this id (keyset pagination, newest first). */
  before?: string;
  limit: number;
  /** An extra condition, e.g. a display state (see display-filter.ts). */
  where?: { sql: string; params: unknown[] };
}

/**
 * One page of a workspace's runs, newest first, by keyset on the time-ordered
 * id: `(workspace_id[, outcome | type], id)` indexes serve every combination,
 * so a deep page costs what the first one does.
 */
export function listRunsQuery(workspaceId: string, f: ListRunsFilter): { sql: string; params: unknown[] } {
  const where = ["workspace_id = ?"];
  const params: unknown[] = [workspaceId];
  if (f.status) {
    // A live status ranges over (workspace_id, outcome = 'pending', id): live runs are exactly the
    // pending ones (a CHECK ties outcome to status), and there is no status index to write.
    where.push(f.status === "completed" ? "status = ?" : "outcome = 'pending' AND status = ?");
    params.push(f.status);
  }
  if (f.type) {
    where.push("type = ?");
    params.push(f.type);
  }
  if (f.before) {
    where.push("id < ?");
    params.push(f.before);
  }
  if (f.where) {
    where.push(`(${f.where.sql})`);
    params.push(...f.where.params);
  }
  params.push(f.limit + 1);
  return { sql: `SELECT ${RUN_COLUMNS} FROM operation_runs WHERE ${where.join(" AND ")} ORDER BY id DESC LIMIT ?`, params };
}

export async function listRuns(
  db: D1Reader,
  workspaceId: string,
  f: ListRunsFilter,
): Promise<{ runs: RunRecord[]; nextCursor: string | null; rowsRead: number }> {
  const q = listRunsQuery(workspaceId, f);
  const res = await db.prepare(q.sql).bind(...q.params).all<RunRow>();
  const rows = res.results.slice(0, f.limit);
  const more = res.results.length > f.limit;
  return {
    runs: rows.map(rowToRecord),
    nextCursor: more && rows.length > 0 ? rows[rows.length - 1]!.id : null,
    rowsRead: res.meta.rows_read,
  };
}

/** A run as a member of `workspaceId` sees it: another workspace's run does not exist (primary key, then the workspace). */
export async function runInWorkspace(db: D1Reader, workspaceId: string, runId: string): Promise<RunRecord | null> {
  const row = await db
    .prepare(`SELECT ${RUN_COLUMNS} FROM operation_runs WHERE id = ? AND workspace_id = ?`)
    .bind(runId, workspaceId)
    .first<RunRow>();
  return row ? rowToRecord(row) : null;
}
