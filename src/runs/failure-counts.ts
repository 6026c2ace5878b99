/**
 * Failed runs per workspace and creation hour (`run_failure_counts`), so the
 * admin's "failures, 24 h" tiles cost at most 25 rows read whatever the day's
 * failure volume, where counting the failed runs themselves read every one of
 * them (4,194 rows per page view on the bench's 1M-run workspace).
 *
 * The counter is written by the transition that fails a run, in the same D1
 * batch, after its audit event and guarded like it by `changes() = 1`: it
 * counts exactly when the compare-and-set won, so exactly once per failed run
 * under any race, and a batch that fails or rolls back counts nothing. It
 * costs a failed run one row written (the table is WITHOUT ROWID: no index
 * entry) and a run that does not fail nothing.
 *
 * A run is counted in the hour it was *created* in, as the tiles' filter
 * (`display=failures&range=24h`) selects by creation time through the run id.
 */
import type { ReasonCode } from "../lifecycle";
import { HOUR_MS, hourStart, LIFECYCLE_REASON_CODES } from "./failure-hours";

export { HOUR_MS, hourStart, LIFECYCLE_REASON_CODES, rebuildFailureCountsSql } from "./failure-hours";

/**
 * The counter upsert for a run the batch's transition fails. Must follow, in
 * the same batch, a statement that changed exactly one row only if the
 * transition won (the guarded audit insert).
 */
export function countFailureIfWon(
  db: Pick<D1Database, "prepare">,
  run: { workspaceId: string; createdAt: number },
  reasonCode: ReasonCode | null,
): D1PreparedStatement {
  const reconciled = reasonCode !== null && LIFECYCLE_REASON_CODES.includes(reasonCode) ? 1 : 0;
  return db
    .prepare(
      `INSERT INTO run_failure_counts (workspace_id, hour_start, failed, reconciled)
       SELECT ?, ?, 1, ? WHERE changes() = 1
       ON CONFLICT (workspace_id, hour_start) DO UPDATE SET failed = failed + 1, reconciled = reconciled + excluded.reconciled`,
    )
    .bind(run.workspaceId, hourStart(run.createdAt), reconciled);
}

/**
 * Failed runs of `workspaceId` created at or after `since` (which must be the
 * top of an hour: counts are per hour), as `{ failed, reconciled }`. Reads one
 * row per hour that had a failure: at most 25 for a 24 h window.
 */
export function failureCountsQuery(workspaceId: string, since: number): { sql: string; params: unknown[] } {
  if (since % HOUR_MS !== 0) throw new RangeError(`failure counts start at the top of an hour, not at ${since}`);
  return {
    sql: `SELECT COALESCE(SUM(failed), 0) AS failed, COALESCE(SUM(reconciled), 0) AS reconciled
            FROM run_failure_counts WHERE workspace_id = ? AND hour_start >= ?`,
    params: [workspaceId, since],
  };
}

