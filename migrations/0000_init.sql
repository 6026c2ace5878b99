CREATE TABLE `api_tokens` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`name` text NOT NULL,
	`token_hash` text NOT NULL,
	`created_at` integer NOT NULL,
	`last_used_at` integer,
	`revoked_at` integer,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_hash_uq` ON `api_tokens` (`token_hash`);--> statement-breakpoint
CREATE INDEX `api_tokens_workspace_idx` ON `api_tokens` (`workspace_id`);--> statement-breakpoint
CREATE TABLE `audit_events` (
	`id` text PRIMARY KEY NOT NULL,
	`workspace_id` text NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`metadata` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `audit_events_subject_idx` ON `audit_events` (`subject_type`,`subject_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_workspace_id_idx` ON `audit_events` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_created_idx` ON `audit_events` (`created_at`);--> statement-breakpoint
CREATE TABLE `memberships` (
	`workspace_id` text NOT NULL,
	`user_id` text NOT NULL,
	`role` text NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "memberships_role_ck" CHECK("memberships"."role" IN ('owner', 'operator', 'viewer'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `memberships_workspace_user_uq` ON `memberships` (`workspace_id`,`user_id`);--> statement-breakpoint
CREATE INDEX `memberships_user_idx` ON `memberships` (`user_id`);--> statement-breakpoint
CREATE TABLE `operation_runs` (
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
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "operation_runs_status_ck" CHECK("operation_runs"."status" IN ('queued', 'running', 'completed')),
	CONSTRAINT "operation_runs_outcome_ck" CHECK("operation_runs"."outcome" IN ('pending', 'succeeded', 'partially_succeeded', 'failed')),
	CONSTRAINT "operation_runs_outcome_status_ck" CHECK(("operation_runs"."status" = 'completed') = ("operation_runs"."outcome" <> 'pending')),
	CONSTRAINT "operation_runs_reconciled_by_ck" CHECK("operation_runs"."reconciled_by" IS NULL OR "operation_runs"."reconciled_by" IN ('tracker_alarm', 'sweep', 'dead_letter')),
	CONSTRAINT "operation_runs_deadline_ck" CHECK(("operation_runs"."status" = 'completed') = ("operation_runs"."deadline_at" IS NULL)),
	CONSTRAINT "operation_runs_attempt_ck" CHECK("operation_runs"."attempt" >= 0 AND "operation_runs"."attempt" <= "operation_runs"."max_attempts")
);
--> statement-breakpoint
CREATE INDEX `operation_runs_deadline_live_idx` ON `operation_runs` (`deadline_at`) WHERE "operation_runs"."status" <> 'completed';--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_id_idx` ON `operation_runs` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_status_id_idx` ON `operation_runs` (`workspace_id`,`status`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_workspace_type_id_idx` ON `operation_runs` (`workspace_id`,`type`,`id`);--> statement-breakpoint
CREATE INDEX `operation_runs_completed_idx` ON `operation_runs` (`completed_at`) WHERE "operation_runs"."status" = 'completed';--> statement-breakpoint
CREATE UNIQUE INDEX `operation_runs_idempotency_uq` ON `operation_runs` (`workspace_id`,`idempotency_key`);--> statement-breakpoint
CREATE TABLE `users` (
	`id` text PRIMARY KEY NOT NULL,
	`email` text NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `users_email_unique` ON `users` (`email`);--> statement-breakpoint
CREATE TABLE `workspaces` (
	`id` text PRIMARY KEY NOT NULL,
	`slug` text NOT NULL,
	`name` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `workspaces_slug_unique` ON `workspaces` (`slug`);