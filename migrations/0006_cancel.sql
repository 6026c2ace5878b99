-- Operators cancel runs (lifecycle contract v2 sections 2, 6 and 7): the outcome `cancelled`
-- joins the CHECK on `outcome`, and a run records when and by whom a cancel was requested.
-- SQLite cannot change a CHECK in place, so the table is rebuilt; nothing references
-- operation_runs by foreign key, and D1 has no PRAGMA foreign_keys=OFF (defer_foreign_keys
-- holds the workspace_id checks to the end of the migration instead).
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
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "operation_runs_status_ck" CHECK("status" IN ('queued', 'running', 'completed')),
	CONSTRAINT "operation_runs_outcome_ck" CHECK("outcome" IN ('pending', 'succeeded', 'partially_succeeded', 'failed', 'cancelled')),
	CONSTRAINT "operation_runs_cancel_requested_ck" CHECK(("cancel_requested_at" IS NULL) = ("cancel_requested_by" IS NULL)),
	CONSTRAINT "operation_runs_cancelled_ck" CHECK("outcome" <> 'cancelled' OR "cancel_requested_at" IS NOT NULL),
	CONSTRAINT "operation_runs_outcome_status_ck" CHECK(("status" = 'completed') = ("outcome" <> 'pending')),
	CONSTRAINT "operation_runs_reconciled_by_ck" CHECK("reconciled_by" IS NULL OR "reconciled_by" IN ('tracker_alarm', 'sweep', 'dead_letter')),
	CONSTRAINT "operation_runs_deadline_ck" CHECK(("status" = 'completed') = ("deadline_at" IS NULL)),
	CONSTRAINT "operation_runs_attempt_ck" CHECK("attempt" >= 0 AND "attempt" <= "max_attempts")
);
--> statement-breakpoint
INSERT INTO `__new_operation_runs`("id", "workspace_id", "type", "status", "outcome", "attempt", "max_attempts", "input", "progress", "created_at", "started_at", "completed_at", "last_heartbeat_at", "deadline_at", "reason_code", "failure_message", "diagnostics", "reconciled_by", "idempotency_key", "initiator", "updated_at", "cancel_requested_at", "cancel_requested_by") SELECT "id", "workspace_id", "type", "status", "outcome", "attempt", "max_attempts", "input", "progress", "created_at", "started_at", "completed_at", "last_heartbeat_at", "deadline_at", "reason_code", "failure_message", "diagnostics", "reconciled_by", "idempotency_key", "initiator", "updated_at", NULL, NULL FROM `operation_runs`;--> statement-breakpoint
DROP TABLE `operation_runs`;--> statement-breakpoint
ALTER TABLE `__new_operation_runs` RENAME TO `operation_runs`;--> statement-breakpoint
CREATE INDEX `operation_runs_deadline_live_idx` ON `operation_runs` (`deadline_at`,`id`) WHERE "operation_runs"."status" <> 'completed';--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_id_idx` ON `operation_runs` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_status_id_idx` ON `operation_runs` (`workspace_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_type_id_idx` ON `operation_runs` (`workspace_id`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_outcome_id_idx` ON `operation_runs` (`workspace_id`,`outcome`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_failed_idx` ON `operation_runs` (`workspace_id`,`completed_at`) WHERE "operation_runs"."status" = 'completed' AND "operation_runs"."outcome" = 'failed';--> statement-breakpoint
CREATE INDEX `operation_runs_completed_idx` ON `operation_runs` (`completed_at`) WHERE "operation_runs"."status" = 'completed';--> statement-breakpoint
CREATE UNIQUE INDEX `operation_runs_idempotency_uq` ON `operation_runs` (`workspace_id`,`idempotency_key`);