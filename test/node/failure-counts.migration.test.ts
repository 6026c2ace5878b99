/**
 * Migration 0010's backfill, on the real migrations in node:sqlite: failed
 * runs created in the last 25 h are counted per workspace and creation hour
 * (reconciled ones apart), older ones and runs that did not fail are not, so
 * the admin's failure tiles are right from the first deploy.
 */
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";

const dir = new URL("../../migrations/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
const apply = (db: DatabaseSync, file: string) => db.exec(readFileSync(new URL(file, dir), "utf8").replaceAll("--> statement-breakpoint", ""));

describe("migration 0010: failure counters backfilled", () => {
  it("counts the last 25 h's failed runs per workspace and creation hour", () => {
    const db = new DatabaseSync(":memory:");
    const [counters, ...after] = files.slice(files.findIndex((f) => f.startsWith("0010_")));
    for (const f of files.slice(0, files.indexOf(counters!))) apply(db, f);
    db.exec("INSERT INTO workspaces (id, slug, name, created_at) VALUES ('ws_a', 'a', 'A', 0), ('ws_b', 'b', 'B', 0)");
    const hour = 3_600_000;
    const now = Date.now();
    const h1 = Math.floor((now - 2 * hour) / hour) * hour;
    const insert = db.prepare(
      `INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress, created_at, completed_at,
         reason_code, diagnostics, initiator, updated_at)
       VALUES (?, ?, 'demo.work', 'completed', ?, 1, 3, '{}', '{}', ?, ?, ?, '{}', 'user:t', ?)`,
    );
    const rows: Array<[string, string, string, number, string | null]> = [
      ["run_1", "ws_a", "failed", h1 + 10, "handler.failed"],
      ["run_2", "ws_a", "failed", h1 + 20, "lifecycle.heartbeat_lost"],
      ["run_3", "ws_a", "succeeded", h1 + 30, null],
      ["run_4", "ws_b", "failed", h1 + hour + 5, "queue.max_attempts_exceeded"],
      // Two days old: outside the tiles' window.
      ["run_5", "ws_a", "failed", now - 48 * hour, "handler.error"],
    ];
    for (const [id, ws, outcome, createdAt, reason] of rows) insert.run(id, ws, outcome, createdAt, createdAt + 1, reason, createdAt + 1);
    apply(db, counters!);
    for (const f of after) apply(db, f);
    expect(db.prepare("SELECT workspace_id, hour_start, failed, reconciled FROM run_failure_counts ORDER BY workspace_id").all()).toEqual([
      { workspace_id: "ws_a", hour_start: h1, failed: 2, reconciled: 1 },
      { workspace_id: "ws_b", hour_start: h1 + hour, failed: 1, reconciled: 1 },
    ]);
  });
});
