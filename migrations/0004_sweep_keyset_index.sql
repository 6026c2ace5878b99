-- The dispatch model (lifecycle contract v2): the sweep pages overdue runs by keyset on
-- (deadline_at, id), so a page it cannot resolve never starves the runs behind it.
-- Runs accepted before the dispatch model need no data change here: their trackers'
-- v1 state is upgraded when first read (src/tracker/state.ts, upgradeState) and their
-- v1 queue messages still claim the current dispatch (src/queue/messages.ts).
DROP INDEX `operation_runs_deadline_live_idx`;--> statement-breakpoint
CREATE INDEX `operation_runs_deadline_live_idx` ON `operation_runs` (`deadline_at`,`id`) WHERE "operation_runs"."status" <> 'completed';