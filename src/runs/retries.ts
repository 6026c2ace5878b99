/**
 * Retry as a new run (contract section 7): which runs re-drive which. A retry
 * is a new run whose `retry_of` names the original; the original is never
 * changed, so "retried by" is read, never stored, through the partial index
 * `operation_runs_retry_of_idx (retry_of, id) WHERE retry_of IS NOT NULL`.
 */
import type { D1Reader } from "../db/read-session";

/** At most this many retries are listed per run (newest first): a page, not an unbounded list. */
export const MAX_RETRIES_LISTED = 20;

/**
 * Retries of the runs in the JSON array ?1, of workspace ?2, grouped by
 * original, newest first. `+workspace_id` keeps the planner off the workspace
 * indexes (a unary + makes a term unusable by an index: https://sqlite.org/optoverview.html#disqualifying_where_clause_terms_using_unary_),
 * so it searches by `retry_of` and reads only retries.
 */
export const RETRIES_OF_SQL = `SELECT id, retry_of FROM operation_runs
  WHERE retry_of IN (SELECT value FROM json_each(?1)) AND +workspace_id = ?2
  ORDER BY retry_of, id DESC`;

/**
 * The retries of each run in `runIds` (of `workspaceId`), newest first, at most
 * MAX_RETRIES_LISTED each; a run with none is absent from the map. One query
 * whatever the number of ids (passed as one JSON array: D1 binds at most 100
 * parameters per statement), reading only rows that are retries of them.
 */
export async function retriesOf(db: D1Reader, workspaceId: string, runIds: readonly string[]): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (runIds.length === 0) return found;
  const res = await db
    .prepare(RETRIES_OF_SQL)
    .bind(JSON.stringify(runIds), workspaceId)
    .all<{ id: string; retry_of: string }>();
  for (const row of res.results) {
    const list = found.get(row.retry_of) ?? [];
    if (list.length < MAX_RETRIES_LISTED) list.push(row.id);
    found.set(row.retry_of, list);
  }
  return found;
}
