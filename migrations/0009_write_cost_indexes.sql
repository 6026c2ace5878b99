-- Cost at scale (issue 12): fewer index entries written per run. Every statement is an index
-- drop or create; no table is rebuilt, so it applies on top of 0006–0008 as they stand.
-- - audit_events_created_idx: the ULID primary key is already in creation order (retention
--   walks it).
-- - operation_runs_workspace_status_id_idx: live runs are exactly outcome = 'pending' (the
--   outcome/status CHECK), so (workspace_id, outcome, id) serves the status filters and tiles.
-- - operation_runs_completed_idx: retention walks the time-ordered primary key instead.
-- - operation_runs_idempotency_uq: partial, so a run without a key writes no entry.
DROP INDEX `audit_events_created_idx`;--> statement-breakpoint
DROP INDEX `operation_runs_workspace_status_id_idx`;--> statement-breakpoint
DROP INDEX `operation_runs_completed_idx`;--> statement-breakpoint
DROP INDEX `operation_runs_idempotency_uq`;--> statement-breakpoint
CREATE UNIQUE INDEX `operation_runs_idempotency_uq` ON `operation_runs` (`workspace_id`,`idempotency_key`) WHERE "operation_runs"."idempotency_key" IS NOT NULL;
