/**
 * The failure counters' hours and their rebuild from the runs: plain SQL and
 * numbers, with no D1 types, so the node-side bench shares them
 * (src/runs/failure-counts.ts writes and reads the counters).
 */
import { REASON_CODES, reasonFamily, type ReasonCode } from "../lifecycle/reasons";

export const HOUR_MS = 3_600_000;

/** The top of the hour `ms` falls in (ms since the epoch). */
export function hourStart(ms: number): number {
  return Math.floor(ms / HOUR_MS) * HOUR_MS;
}

/** Reason codes of the lifecycle machinery: a failure with one of these shows as "Failed · reconciled". */
export const LIFECYCLE_REASON_CODES: readonly ReasonCode[] = REASON_CODES.filter((c) => reasonFamily(c) === "lifecycle");

/**
 * Rebuild the counters of runs created at or after `since` from the runs
 * themselves (what migration 0010 does for the last 25 h): for runs written
 * without the service, as the bench and tests seed them by SQL.
 */
export function rebuildFailureCountsSql(since: number): { sql: string; params: Array<string | number> } {
  const codes = LIFECYCLE_REASON_CODES.map(() => "?").join(", ");
  return {
    sql: `INSERT INTO run_failure_counts (workspace_id, hour_start, failed, reconciled)
          SELECT workspace_id, (created_at / ${HOUR_MS}) * ${HOUR_MS}, COUNT(*), SUM(CASE WHEN reason_code IN (${codes}) THEN 1 ELSE 0 END)
            FROM operation_runs WHERE outcome = 'failed' AND created_at >= ? GROUP BY 1, 2
          ON CONFLICT (workspace_id, hour_start) DO UPDATE SET failed = excluded.failed, reconciled = excluded.reconciled`,
    params: [...LIFECYCLE_REASON_CODES, since],
  };
}
