-- Cost at scale (issue 12): the webhook outbox's status CHECK spelled as `=` comparisons instead of an
-- `IN (…)` list, as migration 0013 did for operation_runs. SQLite tests an IN list of three or more
-- constants against a temporary b-tree built for the statement, and D1 bills the test as a row read:
-- one on every delivery inserted by a terminal transition and on every update of its status
-- (test/webhooks/webhooks.table-shape.cost.test.ts). SQLite cannot alter a CHECK, so the table is
-- rebuilt, every row and column copied as it is, with the same constraints and indexes. Written by
-- drizzle-kit, then edited: the CHECKs name their columns unqualified (the table is renamed after),
-- and D1 has no PRAGMA foreign_keys=OFF (defer_foreign_keys holds the endpoint checks to the end;
-- nothing references this table).
PRAGMA defer_foreign_keys = on;--> statement-breakpoint
CREATE TABLE `__new_webhook_deliveries` (
	`message_id` text NOT NULL,
	`endpoint_id` text NOT NULL,
	`workspace_id` text NOT NULL,
	`run_id` text NOT NULL,
	`event_type` text NOT NULL,
	`payload` text NOT NULL,
	`status` text NOT NULL,
	`attempts` integer NOT NULL,
	`next_attempt_at` integer,
	`last_status_code` integer,
	`last_error` text,
	`attempt_log` text NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`message_id`, `endpoint_id`),
	FOREIGN KEY (`endpoint_id`) REFERENCES `webhook_endpoints`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "webhook_deliveries_status_ck" CHECK("status" = 'pending' OR "status" = 'delivered' OR "status" = 'failed'),
	CONSTRAINT "webhook_deliveries_next_ck" CHECK(("status" = 'pending') = ("next_attempt_at" IS NOT NULL))
);
--> statement-breakpoint
INSERT INTO `__new_webhook_deliveries`("message_id", "endpoint_id", "workspace_id", "run_id", "event_type", "payload", "status", "attempts", "next_attempt_at", "last_status_code", "last_error", "attempt_log", "created_at", "updated_at") SELECT "message_id", "endpoint_id", "workspace_id", "run_id", "event_type", "payload", "status", "attempts", "next_attempt_at", "last_status_code", "last_error", "attempt_log", "created_at", "updated_at" FROM `webhook_deliveries`;--> statement-breakpoint
DROP TABLE `webhook_deliveries`;--> statement-breakpoint
ALTER TABLE `__new_webhook_deliveries` RENAME TO `webhook_deliveries`;--> statement-breakpoint
CREATE INDEX `webhook_deliveries_endpoint_idx` ON `webhook_deliveries` (`endpoint_id`,`message_id`);--> statement-breakpoint
CREATE INDEX `webhook_deliveries_pending_idx` ON `webhook_deliveries` (`next_attempt_at`) WHERE "webhook_deliveries"."status" = 'pending';--> statement-breakpoint
CREATE INDEX `webhook_deliveries_created_idx` ON `webhook_deliveries` (`created_at`);