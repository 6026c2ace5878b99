-- Cost at scale (issue 12): an audit event writes 2 rows, not 4. The table is rebuilt WITHOUT ROWID
-- and clustered on (subject_type, subject_id, id): a subject's timeline in order is the table itself
-- (audit_events_subject_idx and the rowid key's autoindex go), and each event writes its row and its
-- workspace entry. Events about no run also get an entry in a partial index by id: retention ages
-- them out oldest first (a run's events go with their run), and the CLI finds its own event by id.
-- Hand-edited from drizzle-kit's output: drizzle's sqlite-core cannot say WITHOUT ROWID, and D1 has
-- no PRAGMA foreign_keys=OFF (defer_foreign_keys holds the workspace_id checks to the end instead;
-- nothing references audit_events). Every row and column is copied as it is.
PRAGMA defer_foreign_keys = on;--> statement-breakpoint
CREATE TABLE `__new_audit_events` (
	`id` text NOT NULL,
	`workspace_id` text NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`subject_type` text NOT NULL,
	`subject_id` text NOT NULL,
	`metadata` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`subject_type`, `subject_id`, `id`),
	FOREIGN KEY (`workspace_id`) REFERENCES `workspaces`(`id`) ON UPDATE no action ON DELETE no action
) WITHOUT ROWID;
--> statement-breakpoint
INSERT INTO `__new_audit_events`("id", "workspace_id", "actor", "action", "subject_type", "subject_id", "metadata", "created_at") SELECT "id", "workspace_id", "actor", "action", "subject_type", "subject_id", "metadata", "created_at" FROM `audit_events`;--> statement-breakpoint
DROP TABLE `audit_events`;--> statement-breakpoint
ALTER TABLE `__new_audit_events` RENAME TO `audit_events`;--> statement-breakpoint
CREATE INDEX `audit_events_workspace_id_idx` ON `audit_events` (`workspace_id`,`id`);--> statement-breakpoint
CREATE INDEX `audit_events_other_id_idx` ON `audit_events` (`id`) WHERE "audit_events"."subject_type" <> 'run';
