/**
 * Migration 0014 rebuilds webhook_deliveries to spell its status CHECK with
 * `=` comparisons, on the real migration files in node:sqlite over a database
 * that already holds deliveries in every status: every row and column
 * survives, the CHECKs, the key and the foreign key (with its cascade) still
 * do what they did, and the indexes are the same ones.
 */
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";

const dir = new URL("../../migrations/", import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith(".sql")).sort();
const apply = (db: DatabaseSync, file: string) => db.exec(readFileSync(new URL(file, dir), "utf8").replaceAll("--> statement-breakpoint", ""));
const at = files.findIndex((f) => f.startsWith("0014_"));

const COLUMNS =
  "message_id, endpoint_id, workspace_id, run_id, event_type, payload, status, attempts, next_attempt_at, last_status_code, last_error, attempt_log, created_at, updated_at";

/** A database migrated up to 0013 with two endpoints and deliveries pending, delivered and failed. */
function before(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  for (const f of files.slice(0, at)) apply(db, f);
  db.exec("INSERT INTO workspaces (id, slug, name, created_at) VALUES ('ws_a', 'a', 'A', 1)");
  const endpoint = db.prepare("INSERT INTO webhook_endpoints (id, workspace_id, url, description, event_types, secret, created_at) VALUES (?, 'ws_a', ?, NULL, NULL, 's', 1)");
  endpoint.run("whe_1", "https://a.example/hook");
  endpoint.run("whe_2", "https://b.example/hook");
  const delivery = db.prepare(`INSERT INTO webhook_deliveries (${COLUMNS}) VALUES (${COLUMNS.split(",").map(() => "?").join(", ")})`);
  delivery.run("msg_01A", "whe_1", "ws_a", "run_01A", "run.completed", `{"big":"${"x".repeat(20_000)}"}`, "pending", 1, 500, 503, "Service Unavailable", '[{"at":1}]', 1, 2);
  delivery.run("msg_01A", "whe_2", "ws_a", "run_01A", "run.completed", "{}", "delivered", 1, null, 200, null, '[{"at":1}]', 1, 2);
  delivery.run("msg_01B", "whe_1", "ws_a", "run_01B", "run.completed", "{}", "failed", 8, null, 410, "Gone", "[]", 3, 4);
  return db;
}

const all = (db: DatabaseSync, sql: string) => db.prepare(sql).all();
const ddl = (db: DatabaseSync, type: string) =>
  all(db, `SELECT name, sql FROM sqlite_master WHERE tbl_name = 'webhook_deliveries' AND type = '${type}' AND sql IS NOT NULL ORDER BY name`) as { name: string; sql: string }[];

describe("migration 0014: webhook_deliveries' status CHECK without an IN list", () => {
  it("keeps every row and column, and the same indexes", () => {
    const db = before();
    const rows = all(db, `SELECT ${COLUMNS} FROM webhook_deliveries ORDER BY message_id, endpoint_id`);
    const indexes = ddl(db, "index");
    expect(rows).toHaveLength(3);
    expect(indexes.map((i) => i.name)).toEqual(["webhook_deliveries_created_idx", "webhook_deliveries_endpoint_idx", "webhook_deliveries_pending_idx"]);
    apply(db, files[at]!);
    expect(all(db, `SELECT ${COLUMNS} FROM webhook_deliveries ORDER BY message_id, endpoint_id`)).toEqual(rows);
    expect(ddl(db, "index")).toEqual(indexes);
    expect(all(db, "PRAGMA foreign_key_check")).toEqual([]);
    const [table] = ddl(db, "table");
    expect(table!.sql).not.toMatch(/\bIN\s*\(/i);
    expect(table!.sql).toContain(`CHECK("status" = 'pending' OR "status" = 'delivered' OR "status" = 'failed')`);
  });

  it("still refuses what the CHECKs, the key and the foreign key refuse, and still cascades an endpoint's delete", () => {
    const db = before();
    apply(db, files[at]!);
    const insert = (message: string, endpoint: string, status: string, next: number | null) =>
      db
        .prepare(`INSERT INTO webhook_deliveries (${COLUMNS}) VALUES (?, ?, 'ws_a', 'run_X', 'run.completed', '{}', ?, 0, ?, NULL, NULL, '[]', 1, 1)`)
        .run(message, endpoint, status, next);
    expect(() => insert("msg_X1", "whe_1", "bounced", null)).toThrow(/CHECK constraint failed: webhook_deliveries_status_ck/);
    expect(() => insert("msg_X2", "whe_1", "pending", null)).toThrow(/CHECK constraint failed: webhook_deliveries_next_ck/);
    expect(() => insert("msg_X3", "whe_1", "delivered", 5)).toThrow(/CHECK constraint failed: webhook_deliveries_next_ck/);
    expect(() => insert("msg_X4", "whe_nope", "pending", 5)).toThrow(/FOREIGN KEY constraint failed/);
    expect(() => insert("msg_01A", "whe_1", "pending", 5)).toThrow(/UNIQUE constraint failed: webhook_deliveries.message_id, webhook_deliveries.endpoint_id/);
    expect(() => db.prepare("UPDATE webhook_deliveries SET status = 'lost', next_attempt_at = NULL WHERE message_id = 'msg_01A' AND endpoint_id = 'whe_1'").run()).toThrow(
      /CHECK constraint failed: webhook_deliveries_status_ck/,
    );
    insert("msg_X5", "whe_2", "pending", 5);
    db.exec("DELETE FROM webhook_endpoints WHERE id = 'whe_1'");
    expect(all(db, "SELECT message_id, endpoint_id FROM webhook_deliveries ORDER BY message_id, endpoint_id")).toEqual([
      { message_id: "msg_01A", endpoint_id: "whe_2" },
      { message_id: "msg_X5", endpoint_id: "whe_2" },
    ]);
  });
});
