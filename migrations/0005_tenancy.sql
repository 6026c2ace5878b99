-- API tokens are named uniquely among a workspace's live tokens (the CLI and the admin
-- revoke by name), and dev sign-in sessions live server-side so sign-out is final.
CREATE TABLE `admin_sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`user_id` text NOT NULL,
	`created_at` integer NOT NULL,
	`expires_at` integer NOT NULL,
	`ended_at` integer,
	FOREIGN KEY (`user_id`) REFERENCES `users`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `admin_sessions_user_idx` ON `admin_sessions` (`user_id`);--> statement-breakpoint
CREATE UNIQUE INDEX `api_tokens_workspace_name_live_uq` ON `api_tokens` (`workspace_id`,`name`) WHERE "api_tokens"."revoked_at" IS NULL;