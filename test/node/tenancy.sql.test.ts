/**
 * The tenancy writes (src/tenancy) as the CLI sends them (inlined by
 * scripts/cli/d1.ts), on the real migrations in node:sqlite: the guards inside
 * the statements hold even when the caller's earlier read is stale, and the
 * audit event exists exactly when the write happened.
 */
import { readdirSync, readFileSync } from "node:fs";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { inlineSql } from "../../scripts/cli/d1";
import type { SqlStatement } from "../../src/db/statements";
import { addMemberSql, createTokenSql, eventExistsSql, removeMemberSql, revokeTokenSql, setRoleSql, type ActorRef } from "../../src/tenancy";

const BY: ActorRef = { actor: "user:owner@t.test", metadata: { actorId: "usr_owner" } };

function migratedDb(): DatabaseSync {
  const db = new DatabaseSync(":memory:");
  const dir = new URL("../../migrations/", import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith(".sql")).sort()) db.exec(readFileSync(new URL(file, dir), "utf8"));
  db.exec(`INSERT INTO workspaces VALUES ('ws_t', 't', 'T', 1);
    INSERT INTO users VALUES ('usr_a', 'a@t.test', 'A', 1), ('usr_b', 'b@t.test', 'B', 1);
    INSERT INTO memberships VALUES ('ws_t', 'usr_a', 'owner', 1), ('ws_t', 'usr_b', 'owner', 1);`);
  return db;
}

/** Apply as one transaction, as a D1 batch does; true when the event `eventId` was written. */
function apply(db: DatabaseSync, statements: SqlStatement[], eventId: string): boolean {
  db.exec(`BEGIN; ${statements.map(inlineSql).join("\n")} COMMIT;`);
  return Number((db.prepare(inlineSql(eventExistsSql(eventId))).get() as { won: number }).won) === 1;
}

const owners = (db: DatabaseSync) => db.prepare("SELECT user_id FROM memberships WHERE role = 'owner' ORDER BY user_id").all().map((r) => r.user_id);
const member = (userId: string, email: string, role: "owner" | "operator" | "viewer" = "owner") => ({ workspaceId: "ws_t", userId, email, role, now: 5, by: BY });

describe("tenancy statements", () => {
  it("two owners removing each other from stale reads leave one owner, and one event", () => {
    const db = migratedDb();
    // Both callers read "two owners"; each removal is applied in turn.
    expect(apply(db, removeMemberSql({ ...member("usr_a", "a@t.test"), eventId: "evt_1" }), "evt_1")).toBe(true);
    expect(apply(db, removeMemberSql({ ...member("usr_b", "b@t.test"), eventId: "evt_2" }), "evt_2")).toBe(false);
    expect(owners(db)).toEqual(["usr_b"]);
    expect(db.prepare("SELECT action, actor, metadata FROM audit_events").all()).toEqual([
      { action: "member.removed", actor: "user:owner@t.test", metadata: JSON.stringify({ email: "a@t.test", role: "owner", actorId: "usr_owner" }) },
    ]);
  });

  it("demoting owners stops at the last one; promoting needs no other owner", () => {
    const db = migratedDb();
    const demote = (userId: string, email: string, eventId: string) =>
      apply(db, setRoleSql({ workspaceId: "ws_t", userId, email, from: "owner", to: "viewer", now: 5, by: BY, eventId }), eventId);
    expect(demote("usr_a", "a@t.test", "evt_1")).toBe(true);
    expect(demote("usr_b", "b@t.test", "evt_2")).toBe(false);
    expect(owners(db)).toEqual(["usr_b"]);
    // A stale `from` (the role changed since it was read) applies nothing.
    expect(apply(db, setRoleSql({ workspaceId: "ws_t", userId: "usr_a", email: "a@t.test", from: "operator", to: "owner", now: 5, by: BY, eventId: "evt_3" }), "evt_3")).toBe(false);
    expect(apply(db, setRoleSql({ workspaceId: "ws_t", userId: "usr_a", email: "a@t.test", from: "viewer", to: "owner", now: 5, by: BY, eventId: "evt_4" }), "evt_4")).toBe(true);
    expect(owners(db)).toEqual(["usr_a", "usr_b"]);
  });

  it("one live token per name: a second create of the name writes nothing, a revoke frees it", () => {
    const db = migratedDb();
    const create = (id: string, eventId: string) =>
      apply(db, createTokenSql({ id, workspaceId: "ws_t", name: "deploy", tokenHash: `hash_${id}`, now: 5, by: BY, eventId }), eventId);
    expect(create("tok_1", "evt_1")).toBe(true);
    expect(create("tok_2", "evt_2")).toBe(false);
    expect(apply(db, revokeTokenSql({ workspaceId: "ws_t", id: "tok_1", name: "deploy", now: 6, by: BY, eventId: "evt_3" }), "evt_3")).toBe(true);
    expect(apply(db, revokeTokenSql({ workspaceId: "ws_t", id: "tok_1", name: "deploy", now: 7, by: BY, eventId: "evt_4" }), "evt_4")).toBe(false);
    // Another workspace cannot revoke it either (the id alone is not enough).
    expect(create("tok_3", "evt_5")).toBe(true);
    expect(apply(db, revokeTokenSql({ workspaceId: "ws_other", id: "tok_3", name: "deploy", now: 7, by: BY, eventId: "evt_6" }), "evt_6")).toBe(false);
    expect(db.prepare("SELECT id, revoked_at FROM api_tokens ORDER BY id").all()).toEqual([
      { id: "tok_1", revoked_at: 6 },
      { id: "tok_3", revoked_at: null },
    ]);
  });

  it("adds a member only for the user it read: an email taken meanwhile by another user id adds nobody", () => {
    const db = migratedDb();
    const user = { id: "usr_new", email: "a@t.test", name: "Imposter", isNew: true };
    expect(apply(db, addMemberSql({ workspaceId: "ws_t", user, role: "viewer", now: 5, by: BY, eventId: "evt_1" }), "evt_1")).toBe(false);
    expect(db.prepare("SELECT count(*) AS n FROM users WHERE id = 'usr_new'").get()).toEqual({ n: 0 });
    expect(db.prepare("SELECT count(*) AS n FROM memberships").get()).toEqual({ n: 2 });
  });
});
