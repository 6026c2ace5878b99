-- The failure tiles read hourly counters (0010); nothing reads this index any more, and each failed run wrote an entry in it.
DROP INDEX `operation_runs_workspace_failed_idx`;