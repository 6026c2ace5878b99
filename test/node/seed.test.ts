/**
 * scripts/lib/seed.ts: the seed SQL, applied to the real migrations in an
 * in-memory SQLite (node:sqlite, the engine under local D1), is idempotent and
 * stores only the token's hash.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { DEMO_TOKEN_ID, hashToken, newDemoToken, seedSql, shellQuote, sqlString } from "../../scripts/lib/seed";

function migratedDb(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  const dir = new URL("../../migrations/", import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) {
    db.exec(readFileSync(new URL(file, dir), "utf8"));
  }
  return db;
}

const count = (db: DatabaseSync, sql: string): number => Number((db.prepare(sql).get() as { n: number }).n);

describe("seed", () => {
  it("seeding twice leaves the same rows: two demo workspaces, four users, four memberships, one token", () => {
    const db = migratedDb();
    db.exec(seedSql(hashToken("olt_first"), 1_000));
    db.exec(seedSql(hashToken("olt_first"), 2_000));
    expect(count(db, "SELECT count(*) AS n FROM workspaces WHERE slug IN ('demo', 'other')")).toBe(2);
    expect(count(db, "SELECT count(*) AS n FROM users")).toBe(4);
    expect(count(db, "SELECT count(*) AS n FROM memberships")).toBe(4);
    expect(count(db, "SELECT count(*) AS n FROM api_tokens")).toBe(1);
    const roles = db
      .prepare(
        `SELECT u.email, m.role FROM memberships m JOIN users u ON u.id = m.user_id
          JOIN workspaces w ON w.id = m.workspace_id WHERE w.slug = 'demo' ORDER BY u.email`,
      )
      .all();
    expect(roles).toEqual([
      { email: "operator@demo.test", role: "operator" },
      { email: "owner@demo.test", role: "owner" },
      { email: "viewer@demo.test", role: "viewer" },
    ]);
    // Creation times are those of the first seed: re-seeding does not rewrite history.
    expect(count(db, "SELECT max(created_at) AS n FROM users")).toBe(1_000);
  });

  it("re-seeding with another token replaces the demo token's hash; the token itself is never stored", () => {
    const db = migratedDb();
    db.exec(seedSql(hashToken("olt_first"), 1_000));
    db.exec(seedSql(hashToken("olt_second"), 2_000));
    const rows = db.prepare("SELECT id, workspace_id, token_hash, revoked_at FROM api_tokens").all();
    expect(rows).toEqual([
      { id: DEMO_TOKEN_ID, workspace_id: "ws_demo", token_hash: hashToken("olt_second"), revoked_at: null },
    ]);
    expect(JSON.stringify(db.prepare("SELECT * FROM api_tokens").all())).not.toContain("olt_");
  });

  it("hashes the token as SHA-256 hex of its UTF-8 bytes and mints olt_ tokens", () => {
    expect(hashToken("olt_abc")).toBe(createHash("sha256").update("olt_abc").digest("hex"));
    expect(hashToken("olt_abc")).toMatch(/^[0-9a-f]{64}$/);
    const token = newDemoToken();
    expect(token).toMatch(/^olt_[A-Za-z0-9_-]{43}$/);
    expect(newDemoToken()).not.toBe(token);
  });

  it("escapes SQL and shell quoting", () => {
    expect(sqlString("it's")).toBe("'it''s'");
    expect(() => sqlString("a\0b")).toThrow();
    expect(shellQuote("Bearer it's")).toBe(`'Bearer it'\\''s'`);
    const db = new DatabaseSync(":memory:");
    expect(db.prepare(`SELECT ${sqlString("x'); DROP TABLE t; --")} AS v`).get()).toEqual({ v: "x'); DROP TABLE t; --" });
  });
});
