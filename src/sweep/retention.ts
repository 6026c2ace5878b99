/**
 * Retention: terminal runs (and their events) older than the configured age
 * are purged in bounded batches by the same cron. Non-terminal runs are never
 * touched: every delete is guarded by `status = 'completed'`, and a run's
 * events go only with the run. Running it twice (or in two overlapping crons)
 * is harmless: the second finds the rows already gone and deletes nothing.
 */
import { HOUR_MS, meteredDb, minIdAt, type D1Cost } from "../runs";

export interface RetentionReport {
  runsDeleted: number;
  eventsDeleted: number;
  /** Hourly failure counters deleted (0 unless the cron's invocation in an hour's first minute). */
  countersDeleted: number;
  d1: D1Cost;
}

/**
 * How long an hour's failure counter (`run_failure_counts`, src/runs/failure-counts.ts)
 * is kept (ms): the tiles read the last 24 h only (25 hours), so two days is a margin,
 * independent of RETENTION_DAYS.
 */
export const FAILURE_COUNTS_KEPT_MS = 48 * HOUR_MS;

/**
 * Counters of hours before `?1`. The table's key starts with the workspace, so this
 * reads the whole table: run once an hour (`purgeExpired`), over a table this keeps at
 * no more than 48 rows per workspace with failures (plus a late failure's old hour,
 * re-created by a run that fails days after it was created, gone at the next purge).
 */
export const EXPIRED_FAILURE_COUNTS_SQL = "DELETE FROM run_failure_counts WHERE hour_start < ?1";

/** The cron's period (ms): `* * * * *` in wrangler.toml. */
const CRON_PERIOD_MS = 60_000;

/** D1 binds at most 100 parameters per statement. */
const MAX_IDS = 90;

/** Expired terminal runs, oldest first: `?1` the smallest id minted at the cutoff, `?2` the cutoff, `?3` the batch size. */
export const EXPIRED_RUNS_SQL = "SELECT id FROM operation_runs WHERE id < ?1 AND status = 'completed' AND completed_at < ?2 ORDER BY id LIMIT ?3";

/**
 * Events about no run older than the cutoff: `?1` the smallest event id minted at the cutoff, `?2`
 * the batch size. Both halves range over the partial index of non-run events by id
 * (`audit_events_other_id_idx`, migration 0012): the table's own key starts with the subject.
 */
export const EXPIRED_ORPHAN_EVENTS_SQL =
  "DELETE FROM audit_events WHERE subject_type <> 'run' AND id IN (SELECT id FROM audit_events WHERE id < ?1 AND subject_type <> 'run' ORDER BY id LIMIT ?2)";

export async function purgeExpired(
  db: D1Database,
  opts: {
    now: number;
    retentionMs: number;
    batchSize?: number;
    maxBatches?: number;
    /**
     * The cron invocation's scheduled time (epoch ms): the one in an hour's first minute
     * also purges the failure counters. Absent (a call outside the cron): it does not.
     */
    scheduledTime?: number;
  },
): Promise<RetentionReport> {
  const metered = meteredDb(db);
  const cutoff = opts.now - opts.retentionMs;
  const batchSize = Math.min(opts.batchSize ?? MAX_IDS, MAX_IDS);
  const report: RetentionReport = { runsDeleted: 0, eventsDeleted: 0, countersDeleted: 0, d1: metered.cost };
  // A run completes after it was created, so every run completed before the cutoff was created
  // before it: the time-ordered primary key bounds the search (no index by completion time to
  // write for every run). What it also reads: runs created before the cutoff but not completed
  // before it — the few that spanned the cutoff, purged once they pass it.
  const beforeRunId = minIdAt("run", cutoff);
  for (let i = 0; i < (opts.maxBatches ?? 10); i++) {
    const { results } = await metered.db
      .prepare(EXPIRED_RUNS_SQL)
      .bind(beforeRunId, cutoff, batchSize)
      .all<{ id: string }>();
    if (results.length === 0) break;
    const ids = results.map((r) => r.id);
    const marks = ids.map(() => "?").join(", ");
    const [events, runs] = await metered.db.batch([
      metered.db.prepare(`DELETE FROM audit_events WHERE subject_type = 'run' AND subject_id IN (${marks})`).bind(...ids),
      metered.db.prepare(`DELETE FROM operation_runs WHERE status = 'completed' AND id IN (${marks})`).bind(...ids),
    ]);
    report.eventsDeleted += events?.meta.changes ?? 0;
    report.runsDeleted += runs?.meta.changes ?? 0;
    if (results.length < batchSize) break;
  }
  // Events about no run (e.g. malformed queue messages) age out on their own, oldest first by
  // their time-ordered id; a run's events older than the cutoff go with their run above.
  const orphans = await metered.db
    .prepare(EXPIRED_ORPHAN_EVENTS_SQL)
    .bind(minIdAt("evt", cutoff), batchSize)
    .run();
  report.eventsDeleted += orphans.meta.changes ?? 0;
  // Once an hour: the cron runs every minute (wrangler.toml `crons`), so the invocation
  // scheduled in an hour's first minute does it (its scheduled time, not the clock after
  // the sweep's budget); one that is missed leaves the rows to the next hour's.
  if (opts.scheduledTime !== undefined && opts.scheduledTime % HOUR_MS < CRON_PERIOD_MS) {
    const counters = await metered.db.prepare(EXPIRED_FAILURE_COUNTS_SQL).bind(opts.now - FAILURE_COUNTS_KEPT_MS).run();
    report.countersDeleted = counters.meta.changes ?? 0;
  }
  return report;
}
