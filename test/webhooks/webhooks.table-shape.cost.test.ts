/**
 * What writing a delivery reads under two spellings of `webhook_deliveries`'
 * status CHECK, in scratch copies of the table as migrated (its DDL and
 * indexes from `sqlite_master`, renamed; the foreign key left out so both
 * copies need no endpoint): as migration 0014 spells it (`=` comparisons), and
 * with the IN list it had before. D1's `meta.rows_read` of each statement is
 * the measure: SQLite tests an IN list of three or more constants against a
 * temporary b-tree, and D1 bills the test as a row read, on the insert and on
 * every update that sets the status (an update that does not set it, like the
 * delivery's claim, does not test the CHECK at all).
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";

const SHAPES = {
  migrated: { table: "scratch_deliveries_eq", change: (sql: string) => sql },
  inList: {
    table: "scratch_deliveries_in",
    change: (sql: string) => sql.replace(`"status" = 'pending' OR "status" = 'delivered' OR "status" = 'failed'`, `"status" IN ('pending', 'delivered', 'failed')`),
  },
};

async function createShape(shape: { table: string; change: (sql: string) => string }): Promise<void> {
  const { results } = await env.DB.prepare("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'webhook_deliveries' AND sql IS NOT NULL").all<{ type: string; sql: string }>();
  const rename = (sql: string) => sql.replaceAll("webhook_deliveries", shape.table);
  const table = results.find((r) => r.type === "table")!.sql;
  const changed = shape.change(rename(table)).replace(/\s*FOREIGN KEY[^\n]*\n/, "\n");
  await env.DB.batch([changed, ...results.filter((r) => r.type === "index").map((r) => rename(r.sql))].map((sql) => env.DB.prepare(sql)));
}

/** Rows read by a pending delivery's insert and by its settling update (as src/webhooks/deliver.ts writes it). */
async function costOf(table: string): Promise<{ insert: number; settle: number; claim: number }> {
  const message = `msg_${crypto.randomUUID()}`;
  const insert = await env.DB.prepare(
    `INSERT INTO ${table} (message_id, endpoint_id, workspace_id, run_id, event_type, payload, status, attempts, next_attempt_at, attempt_log, created_at, updated_at)
     VALUES (?, 'whe_1', 'ws_a', 'run_1', 'run.completed', '{}', 'pending', 0, 1, '[]', 1, 1)`,
  )
    .bind(message)
    .run();
  const claim = await env.DB.prepare(
    `UPDATE ${table} SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ? WHERE message_id = ? AND endpoint_id = ? AND status = 'pending' AND attempts = ?`,
  )
    .bind(2, 2, message, "whe_1", 0)
    .run();
  const settle = await env.DB.prepare(
    `UPDATE ${table} SET status = ?, next_attempt_at = ?, last_status_code = ?, last_error = ?, attempt_log = ?, updated_at = ?
      WHERE message_id = ? AND endpoint_id = ? AND status = 'pending' AND attempts = ?`,
  )
    .bind("delivered", null, 200, null, "[]", 3, message, "whe_1", 1)
    .run();
  expect([insert.meta.changes, claim.meta.changes, settle.meta.changes]).toEqual([1, 1, 1]);
  return { insert: insert.meta.rows_read, claim: claim.meta.rows_read, settle: settle.meta.rows_read };
}

describe("webhook_deliveries' status CHECK: what a delivery's writes read", () => {
  beforeAll(async () => {
    for (const shape of Object.values(SHAPES)) await createShape(shape);
  });

  it("as migrated, the insert reads nothing and each update only the row it seeks; the IN list costs one more on the insert and on the settling update", async () => {
    const migrated = await costOf(SHAPES.migrated.table);
    const inList = await costOf(SHAPES.inList.table);
    console.log(`delivery rows read, as migrated: ${JSON.stringify(migrated)}; with the IN list: ${JSON.stringify(inList)}`);
    expect(migrated).toEqual({ insert: 0, claim: 1, settle: 1 });
    expect(inList).toEqual({ insert: 1, claim: 1, settle: 2 });
  });
});
