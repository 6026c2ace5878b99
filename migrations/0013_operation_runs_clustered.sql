-- Cost at scale (issue 12): a run's insert writes no rowid key entry. operation_runs is rebuilt
-- WITHOUT ROWID on its primary key `id`: the table is the id-ordered b-tree itself, so acceptance
-- writes the row and its secondary index entries, not also a `sqlite_autoindex` entry mapping id to
-- rowid. Every secondary index already ends in `id`, so none grows (an entry points at the row by
-- id instead of rowid). Hand-written: drizzle's sqlite-core cannot say WITHOUT ROWID; the rest of
-- the table is as drizzle-kit's snapshot has it (0013_snapshot.json). Nothing references
-- operation_runs by foreign key; D1 has no PRAGMA foreign_keys=OFF (defer_foreign_keys holds the workspace_id checks to the end). Every row
-- and column is copied as it is, in the table's column order, with every CHECK and index.
-- The CHECKs say the same as before, with their enumerations spelled as `=` comparisons instead of
-- `IN (…)` lists: SQLite tests an IN list of three or more constants against a temporary b-tree
-- built for the statement, and D1 bills each test as a row read, on every UPDATE that sets the
-- column. Spelled out, a transition's compare-and-set reads only the row it seeks (the sweep's
-- reconciliation: 4 rows read -> 1; test/runs/table-shape.cost.test.ts).
PRAGMA defer_foreign_keys = on;--> statement-breakpoint
CREATE TABLE `__new_operation_runs` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`type` text NOT NULL,
	`status` text NOT NULL,
	`outcome` text NOT NULL,
	`attempt` integer NOT NULL,
	`max_attempts` integer NOT NULL,
	`input` text NOT NULL,
	`progress` text NOT NULL,
	`created_at` integer NOT NULL,
	`started_at` integer,
	`completed_at` integer,
	`last_heartbeat_at` integer,
	`deadline_at` integer,
	`reason_code` text,
	`failure_message` text,
	`diagnostics` text NOT NULL,
	`reconciled_by` text,
	`idempotency_key` text,
	`initiator` text NOT NULL,
	`updated_at` integer NOT NULL,
	`cancel_requested_at` integer,
	`cancel_requested_by` text,
	`retry_of` text,
	`output` text,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "operation_runs_status_ck" CHECK("status" = 'queued' OR "status" = 'running' OR "status" = 'completed'),
	CONSTRAINT "operation_runs_outcome_ck" CHECK("outcome" = 'pending' OR "outcome" = 'succeeded' OR "outcome" = 'partially_succeeded' OR "outcome" = 'failed' OR "outcome" = 'cancelled'),
	CONSTRAINT "operation_runs_cancel_requested_ck" CHECK(("cancel_requested_at" IS NULL) = ("cancel_requested_by" IS NULL)),
	CONSTRAINT "operation_runs_cancelled_ck" CHECK("outcome" <> 'cancelled' OR "cancel_requested_at" IS NOT NULL),
	CONSTRAINT "operation_runs_outcome_status_ck" CHECK(("status" = 'completed') = ("outcome" <> 'pending')),
	CONSTRAINT "operation_runs_reconciled_by_ck" CHECK("reconciled_by" IS NULL OR "reconciled_by" = 'tracker_alarm' OR "reconciled_by" = 'sweep' OR "reconciled_by" = 'dead_letter'),
	CONSTRAINT "operation_runs_deadline_ck" CHECK(("status" = 'completed') = ("deadline_at" IS NULL)),
	CONSTRAINT "operation_runs_attempt_ck" CHECK("attempt" >= 0 AND "attempt" <= "max_attempts")
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_operation_runs`("id", "workspace_id", "type", "status", "outcome", "attempt", "max_attempts", "input", "progress", "created_at", "started_at", "completed_at", "last_heartbeat_at", "deadline_at", "reason_code", "failure_message", "diagnostics", "reconciled_by", "idempotency_key", "initiator", "updated_at", "cancel_requested_at", "cancel_requested_by", "retry_of", "output") SELECT "id", "workspace_id", "type", "status", "outcome", "attempt", "max_attempts", "input", "progress", "created_at", "started_at", "completed_at", "last_heartbeat_at", "deadline_at", "reason_code", "failure_message", "diagnostics", "reconciled_by", "idempotency_key", "initiator", "updated_at", "cancel_requested_at", "cancel_requested_by", "retry_of", "output" FROM `operation_runs`;--> statement-breakpoint
DROP TABLE `operation_runs`;--> statement-breakpoint
ALTER TABLE `__new_operation_runs` RENAME TO `operation_runs`;--> statement-breakpoint
CREATE INDEX `operation_runs_deadline_live_idx` ON `operation_runs` (`deadline_at`,`id`) WHERE "operation_runs"."status" <> 'completed';--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_id_idx` ON `operation_runs` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_type_id_idx` ON `operation_runs` (`workspace_id`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_outcome_id_idx` ON `operation_runs` (`workspace_id`,`outcome`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_retry_of_idx` ON `operation_runs` (`retry_of`,`id`) WHERE "operation_runs"."retry_of" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX `operation_runs_idempotency_uq` ON `operation_runs` (`workspace_id`,`idempotency_key`) WHERE "operation_runs"."idempotency_key" IS NOT NULL;
