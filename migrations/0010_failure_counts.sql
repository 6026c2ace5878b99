-- The admin's "failures, 24 h" tiles read per-hour counters instead of re-counting every
-- failed run of the day (src/runs/failure-counts.ts). The transition that fails a run
-- upserts its creation hour's row in the same batch, guarded like its audit event.
-- WITHOUT ROWID: the primary key is the table, so an upsert writes one row, no index entry
-- (drizzle's schema cannot say this; the table is otherwise as src/db/schema.ts declares it).
CREATE TABLE `run_failure_counts` (
	`workspace_id` text NOT NULL,
	`hour_start` integer NOT NULL,
	`failed` integer NOT NULL,
	`reconciled` integer NOT NULL,
	PRIMARY KEY(`workspace_id`, `hour_start`)
) WITHOUT ROWID;--> statement-breakpoint
-- Backfill the window the tiles show (the last 25 hours by creation time), so the tiles are
-- right from the first deploy. Failures written between this statement and the deploy of the
-- code that counts them are missed: apply the migration, then deploy at once.
INSERT INTO `run_failure_counts` (`workspace_id`, `hour_start`, `failed`, `reconciled`)
SELECT `workspace_id`, (`created_at` / 3600000) * 3600000, COUNT(*),
       SUM(CASE WHEN `reason_code` IN ('lifecycle.stale_queued', 'lifecycle.heartbeat_lost', 'lifecycle.stale_running', 'queue.max_attempts_exceeded') THEN 1 ELSE 0 END)
  FROM `operation_runs`
 WHERE `outcome` = 'failed' AND `created_at` >= (unixepoch('now') - 25 * 3600) * 1000
 GROUP BY 1, 2;
