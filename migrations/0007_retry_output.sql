-- Retry as a new run and handler output (lifecycle contract v2, sections 1 and 7).
-- Columns only (no table rebuild): `retry_of` names the run a retry re-drives, `output`
-- holds the JSON a handler returned on success or partial success (size-capped by the
-- code, MAX_OUTPUT_BYTES). The partial index answers "which runs retried this one"
-- (a run page's "Retried by") without touching the runs that are not retries.
ALTER TABLE `operation_runs` ADD `retry_of` text;--> statement-breakpoint
ALTER TABLE `operation_runs` ADD `output` text;--> statement-breakpoint
CREATE INDEX `operation_runs_retry_of_idx` ON `operation_runs` (`retry_of`,`id`) WHERE "operation_runs"."retry_of" IS NOT NULL;
