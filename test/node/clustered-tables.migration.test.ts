/**
 * Migrations 0012 and 0013 rebuild audit_events and operation_runs as
 * `WITHOUT ROWID`, on the real migration files in node:sqlite over a database
 * that already holds rows: every row and column survives, the CHECKs and the
 * foreign key still refuse bad rows, the indexes are the ones the code's
 * query plans name, and neither table has a rowid any more.
 */
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";

const dir = new URL("../../migrations/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
const apply = (db: DatabaseSync, file: string) => db.exec(readFileSync(new URL(file, dir), "utf8").replaceAll("--> statement-breakpoint", ""));
const first = files.findIndex((f) => f.startsWith("0012_"));

const RUN_COLUMNS =
  "id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress, created_at, started_at, completed_at, last_heartbeat_at, " +
  "deadline_at, reason_code, failure_message, diagnostics, reconciled_by, idempotency_key, initiator, updated_at, cancel_requested_at, " +
  "cancel_requested_by, retry_of, output";

/** A database migrated up to 0011 with runs in every state and events about runs and other subjects. */
function before(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  for (const f of files.slice(0, first)) apply(db, f);
  db.exec("INSERT INTO workspaces (id, slug, name, created_at) VALUES ('ws_a', 'a', 'A', 1), ('ws_b', 'b', 'B', 2)");
  const run = db.prepare(`INSERT INTO operation_runs (${RUN_COLUMNS}) VALUES (${RUN_COLUMNS.split(",").map(() => "?").join(", ")})`);
  // id, ws, type, status, outcome, attempt, max, input, progress, created, started, completed, heartbeat, deadline, reason, message,
  // diagnostics, reconciled_by, idempotency key, initiator, updated, cancel at, cancel by, retry_of, output
  run.run("run_01A", "ws_a", "demo.work", "queued", "pending", 0, 3, '{"n":1}', "{}", 10, null, null, null, 900, null, null, "{}", null, "key-1", "user:a", 10, null, null, null, null);
  run.run("run_01B", "ws_a", "demo.work", "running", "pending", 1, 3, '{"n":2}', '{"processed":1}', 11, 12, null, 13, 950, null, null, '{"attempts":[1]}', null, null, "api-token:ci", 13, 14, "user:a", null, null);
  run.run("run_01C", "ws_b", "http.export", "completed", "succeeded", 1, 1, "{}", "{}", 12, 13, 14, null, null, null, null, "{}", null, null, "user:b", 14, null, null, "run_01D", `{"big":"${"x".repeat(70_000)}"}`);
  run.run("run_01D", "ws_b", "http.export", "completed", "failed", 2, 2, "{}", "{}", 5, 6, 7, 6, null, "lifecycle.stale_running", "gone", "{}", "sweep", null, "user:b", 7, null, null, null, null);
  run.run("run_01E", "ws_a", "demo.work", "completed", "cancelled", 0, 3, "{}", "{}", 15, null, 16, null, null, "operator.cancelled", null, "{}", null, null, "user:a", 16, 15, "user:a", null, null);
  const event = db.prepare("INSERT INTO audit_events (id, workspace_id, actor, action, subject_type, subject_id, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  event.run("evt_01A", "ws_a", "user:a", "run.queued", "run", "run_01A", "{}", 10);
  event.run("evt_01B", "ws_a", "system:consumer", "run.attempt_started", "run", "run_01B", '{"attempt":1}', 12);
  event.run("evt_01C", "ws_b", "system:sweep", "run.reconciled", "run", "run_01D", '{"evidence":{}}', 7);
  event.run("evt_01D", "ws_a", "system:cli", "member.added", "user", "usr_1", '{"role":"owner"}', 3);
  event.run("evt_01E", "ws_system", "system:consumer", "queue.message_malformed", "queue_message", "msg_1", "{}", 4);
  return db;
}

const all = (db: DatabaseSync, sql: string) => db.prepare(sql).all();

describe("migrations 0012 and 0013: audit_events and operation_runs rebuilt WITHOUT ROWID", () => {
  it("keep every row and column as it was", () => {
    const db = before();
    const runs = all(db, `SELECT ${RUN_COLUMNS} FROM operation_runs ORDER BY id`);
    const events = all(db, "SELECT * FROM audit_events ORDER BY id");
    expect(runs).toHaveLength(5);
    expect(events).toHaveLength(5);
    for (const f of files.slice(first)) apply(db, f);
    expect(all(db, `SELECT ${RUN_COLUMNS} FROM operation_runs ORDER BY id`)).toEqual(runs);
    expect(all(db, "SELECT * FROM audit_events ORDER BY id")).toEqual(events);
    expect(all(db, "PRAGMA foreign_key_check")).toEqual([]);
  });

  it("leave both tables without a rowid, with exactly the indexes the query plans name", () => {
    const db = before();
    for (const f of files.slice(first)) apply(db, f);
    expect(() => db.prepare("SELECT rowid FROM audit_events").all()).toThrow(/no such column: rowid/);
    expect(() => db.prepare("SELECT rowid FROM operation_runs").all()).toThrow(/no such column: rowid/);
    const indexes = (table: string) =>
      (all(db, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = '${table}' ORDER BY name`) as Array<{ name: string }>).map((r) => r.name);
    expect(indexes("audit_events")).toEqual(["audit_events_other_id_idx", "audit_events_workspace_id_idx"]);
    expect(indexes("operation_runs")).toEqual([
      "operation_runs_deadline_live_idx",
      "operation_runs_idempotency_uq",
      "operation_runs_retry_of_idx",
      "operation_runs_workspace_id_idx",
      "operation_runs_workspace_outcome_id_idx",
      "operation_runs_workspace_type_id_idx",
    ]);
    const pk = (table: string) =>
      (all(db, `PRAGMA table_info(${table})`) as Array<{ name: string; pk: number }>)
        .filter((c) => c.pk > 0)
        .sort((a, b) => a.pk - b.pk)
        .map((c) => c.name);
    expect(pk("audit_events")).toEqual(["subject_type", "subject_id", "id"]);
    expect(pk("operation_runs")).toEqual(["id"]);
  });

  it("still refuse what the CHECKs, keys and the foreign key refuse", () => {
    const db = before();
    for (const f of files.slice(first)) apply(db, f);
    const insertRun = (id: string, ws: string, status: string, outcome: string, deadline: number | null, key: string | null = null) =>
      db
        .prepare(
          `INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress, created_at, deadline_at,
             diagnostics, idempotency_key, initiator, updated_at) VALUES (?, ?, 'demo.work', ?, ?, 0, 3, '{}', '{}', 1, ?, '{}', ?, 'user:t', 1)`,
        )
        .run(id, ws, status, outcome, deadline, key);
    expect(() => insertRun("run_X1", "ws_a", "paused", "pending", 5)).toThrow(/CHECK constraint failed: operation_runs_status_ck/);
    expect(() => insertRun("run_X2", "ws_a", "completed", "succeeded", 5)).toThrow(/CHECK constraint failed: operation_runs_deadline_ck/);
    expect(() => insertRun("run_X3", "ws_a", "queued", "cancelled", 5)).toThrow(/CHECK constraint failed/);
    expect(() => insertRun("run_X4", "ws_nope", "queued", "pending", 5)).toThrow(/FOREIGN KEY constraint failed/);
    expect(() => insertRun("run_01A", "ws_a", "queued", "pending", 5)).toThrow(/UNIQUE constraint failed: operation_runs.id/);
    expect(() => insertRun("run_X5", "ws_a", "queued", "pending", 5, "key-1")).toThrow(/UNIQUE constraint failed: operation_runs.workspace_id, operation_runs.idempotency_key/);
    insertRun("run_X6", "ws_a", "queued", "pending", 5);

    const insertEvent = (id: string, ws: string, subjectId: string) =>
      db
        .prepare("INSERT INTO audit_events (id, workspace_id, actor, action, subject_type, subject_id, metadata, created_at) VALUES (?, ?, 'user:t', 'x', 'run', ?, '{}', 1)")
        .run(id, ws, subjectId);
    expect(() => insertEvent("evt_X1", "ws_nope", "run_01A")).toThrow(/FOREIGN KEY constraint failed/);
    expect(() => insertEvent("evt_01A", "ws_a", "run_01A")).toThrow(/UNIQUE constraint failed/);
    insertEvent("evt_X2", "ws_a", "run_01A");
  });
});
