/**
 * `npm run oplife`, run as a process against a local D1 (a temporary
 * `--persist-to` state, migrated and seeded) that a real `wrangler dev` serves
 * at the same time: every command, every refusal and its exit code, and an API
 * token shown once, usable against the API, then answering 401 once revoked.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseError, read, write } from "../../scripts/cli/d1";
import { statement } from "../../src/db/statements";
import { startLocalWorker, type RunningWorker } from "../browser/support/local-worker";
import { offlineEnv } from "../browser/support/wrangler";
import {
  jsonError,
  jsonOut,
  memberAddedJson,
  memberListJson,
  oplife,
  tokenCreatedJson,
  tokenListJson,
  workspaceJson,
  workspaceListJson,
} from "./support/cli";

let running: RunningWorker;
let persistTo: string;
let baseUrl: string;
const cli = (...args: string[]) => oplife(persistTo, ...args);
const target = () => ({ remote: false, persistTo });
// Each command starts tsx and wrangler (seconds apiece on a loaded 2-core box); a test runs up to ~20.
const SLOW = 600_000;
const slug = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

beforeAll(async () => {
  // The direct reads below (scripts/cli/d1.ts) run wrangler with this process's environment: keep it offline too.
  Object.assign(process.env, offlineEnv(mkdtempSync(join(tmpdir(), "oplife-cli-test-logs-"))));
  running = await startLocalWorker();
  persistTo = running.worker.persistTo;
  baseUrl = running.worker.baseUrl;
}, 180_000);

afterAll(async () => {
  await running?.stop();
});

async function slugs(): Promise<string[]> {
  return jsonOut(await cli("workspace", "list", "--json"), workspaceListJson).map((w) => w.slug);
}

async function auditOf(workspaceSlug: string): Promise<Array<{ actor: string; action: string; metadata: string }>> {
  return read(
    target(),
    statement(
      "SELECT e.actor, e.action, e.metadata FROM audit_events e JOIN workspaces w ON w.id = e.workspace_id WHERE w.slug = ? ORDER BY e.id",
      workspaceSlug,
    ),
  );
}

describe("oplife workspace", () => {
  it("creates a workspace, lists it, and refuses a taken slug with exit 2", async () => {
    const s = slug("acme");
    const created = jsonOut(await cli("workspace", "create", "--slug", s, "--name", "Acme Inc", "--json"), workspaceJson);
    expect(created).toMatchObject({ slug: s, name: "Acme Inc" });

    const listed = jsonOut(await cli("workspace", "list", "--json"), workspaceListJson);
    expect(listed.find((w) => w.slug === s)).toEqual({ ...created, members: 0, owners: 0 });
    // The system workspace (owner of tenant-less events) is nobody's and not listed.
    expect(listed.map((w) => w.slug)).not.toContain("system");
    const text = await cli("workspace", "list");
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${s}\\s+Acme Inc\\s+0\\s+0\\s`, "m"));

    const again = await cli("workspace", "create", "--slug", s, "--name", "Another");
    expect(again.code).toBe(2);
    expect(again.stderr).toContain(`workspace "${s}" already exists`);
    expect(jsonOut(await cli("workspace", "list", "--json"), workspaceListJson).filter((w) => w.slug === s)).toEqual([{ ...created, members: 0, owners: 0 }]);
    expect((await auditOf(s)).map((e) => [e.actor, e.action])).toEqual([["system:cli", "workspace.created"]]);
  });
});

describe("oplife refusals", () => {
  it("answers bad input with a clear error and exit 2, and writes nothing", async () => {
    const s = slug("refuse");
    jsonOut(await cli("workspace", "create", "--slug", s, "--name", "Refusals", "--json"), workspaceJson);
    const before = await slugs();
    const cases: Array<[args: string[], says: RegExp]> = [
      [["workspace", "create", "--slug", "Not A Slug", "--name", "x"], /--slug: slug must be 2–63 lowercase letters/],
      [["workspace", "create", "--slug", "fine-slug"], /required option '--name <name>' not specified/],
      [["workspace", "frobnicate"], /unknown command 'frobnicate'/],
      [["token"], /Usage: oplife token/],
      [["member", "add", "--workspace", s, "--email", "not-an-email", "--role", "owner"], /--email: email must be an email address/],
      [["member", "add", "--workspace", s, "--email", "a@b.test", "--role", "boss"], /argument 'boss' is invalid. Allowed choices are owner, operator, viewer/],
      [["member", "add", "--workspace", "no-such-ws", "--email", "a@b.test", "--role", "owner"], /no workspace with slug "no-such-ws"/],
      [["member", "remove", "--workspace", s, "--email", "nobody@b.test"], /nobody@b.test is not a member of/],
      [["token", "create", "--workspace", s, "--name", "  "], /--name: token name must not be empty/],
      [["token", "revoke", "--workspace", s, "--name", "never-made"], /has no live token named "never-made"/],
      [["--remote", "workspace", "list"], /--persist-to is for the local D1; it cannot be used with --remote/],
    ];
    for (const [args, says] of cases) {
      const r = await cli(...args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr, args.join(" ")).toMatch(says);
    }
    // --json errors are one JSON line on stderr, stdout stays empty for the script reading it.
    const asJson = await cli("member", "add", "--workspace", s, "--email", "bad", "--role", "owner", "--json");
    expect(asJson.code).toBe(2);
    expect(asJson.stdout).toBe("");
    expect(jsonError(asJson)).toEqual({ message: "--email: email must be an email address", exitCode: 2 });

    expect(await slugs()).toEqual(before);
    expect(jsonOut(await cli("member", "list", "--workspace", s, "--json"), memberListJson)).toEqual([]);
    expect(jsonOut(await cli("token", "list", "--workspace", s, "--json"), tokenListJson)).toEqual([]);
  }, SLOW);

  it("exits 1 with wrangler's words when the database cannot answer", async () => {
    const empty = mkdtempSync(join(tmpdir(), "oplife-cli-unmigrated-"));
    try {
      const r = await oplife(empty, "workspace", "list", "--json");
      expect(r.code).toBe(1);
      expect(jsonError(r)).toMatchObject({ exitCode: 1, message: expect.stringMatching(/no such table: workspaces/) });
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe("oplife member", () => {
  it("adds, changes and removes members; the last owner can be neither removed nor demoted", async () => {
    const s = slug("team");
    jsonOut(await cli("workspace", "create", "--slug", s, "--name", "Team", "--json"), workspaceJson);

    const ada = jsonOut(await cli("member", "add", "--workspace", s, "--email", "Ada@Team.test", "--role", "owner", "--json"), memberAddedJson);
    // Stored lowercase, as Cloudflare Access presents emails; the name defaults to the local part.
    expect(ada).toMatchObject({ workspace: s, email: "ada@team.test", name: "ada", role: "owner", newUser: true });

    const twice = await cli("member", "add", "--workspace", s, "--email", "ada@team.test", "--role", "viewer");
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain(`ada@team.test is already a member of "${s}" as owner`);

    const removeLast = await cli("member", "remove", "--workspace", s, "--email", "ada@team.test");
    expect(removeLast.code).toBe(2);
    expect(removeLast.stderr).toContain(`ada@team.test is the last owner of "${s}" and cannot be removed`);
    const demoteLast = await cli("member", "set-role", "--workspace", s, "--email", "ada@team.test", "--role", "viewer");
    expect(demoteLast.code).toBe(2);
    expect(demoteLast.stderr).toContain(`ada@team.test is the last owner of "${s}"`);

    const bob = await cli("member", "add", "--workspace", s, "--email", "bob@team.test", "--role", "operator", "--name", "Bob Builder");
    expect(bob.code).toBe(0);
    expect(bob.stdout).toContain(`Added bob@team.test to "${s}" as operator (new user).`);
    expect((await cli("member", "set-role", "--workspace", s, "--email", "bob@team.test", "--role", "owner")).code).toBe(0);
    const same = await cli("member", "set-role", "--workspace", s, "--email", "bob@team.test", "--role", "owner");
    expect(same.code).toBe(0);
    expect(same.stdout).toContain("nothing changed");
    // Now that Bob is an owner too, Ada can step down, and then leave.
    expect((await cli("member", "set-role", "--workspace", s, "--email", "ada@team.test", "--role", "operator")).code).toBe(0);
    const removed = await cli("member", "remove", "--workspace", s, "--email", "ada@team.test");
    expect(removed.code).toBe(0);
    expect(removed.stdout).toContain(`Removed ada@team.test from "${s}".`);

    const members = jsonOut(await cli("member", "list", "--workspace", s, "--json"), memberListJson);
    expect(members.map((m) => [m.email, m.name, m.role])).toEqual([["bob@team.test", "Bob Builder", "owner"]]);
    const text = await cli("member", "list", "--workspace", s);
    expect(text.stdout).toMatch(/^bob@team\.test\s+Bob Builder\s+owner\s/m);
    expect(jsonOut(await cli("workspace", "list", "--json"), workspaceListJson).find((w) => w.slug === s)).toMatchObject({ members: 1, owners: 1 });

    // An existing user joins another workspace as the same user.
    const other = slug("team2");
    jsonOut(await cli("workspace", "create", "--slug", other, "--name", "Team 2", "--json"), workspaceJson);
    const again = jsonOut(await cli("member", "add", "--workspace", other, "--email", "bob@team.test", "--role", "viewer", "--json"), memberAddedJson);
    expect(again).toMatchObject({ newUser: false, name: "Bob Builder" });

    const events = await auditOf(s);
    expect(events.map((e) => [e.actor, e.action])).toEqual([
      ["system:cli", "workspace.created"],
      ["system:cli", "member.added"],
      ["system:cli", "member.added"],
      ["system:cli", "member.role_changed"],
      ["system:cli", "member.role_changed"],
      ["system:cli", "member.removed"],
    ]);
    expect(JSON.parse(events[4]!.metadata)).toEqual({ email: "ada@team.test", from: "owner", to: "operator" });
  }, SLOW);
});

describe("oplife token", () => {
  it("prints a token once, stores only its SHA-256, lets it call the API, records its use, and revoked it answers 401", async () => {
    const s = slug("tok");
    jsonOut(await cli("workspace", "create", "--slug", s, "--name", "Tokens", "--json"), workspaceJson);

    const text = await cli("token", "create", "--workspace", s, "--name", "deploy");
    expect(text.code).toBe(0);
    const token = /^\s+(olt_[A-Za-z0-9_-]{43})$/m.exec(text.stdout)?.[1];
    expect(token, text.stdout).toBeDefined();
    expect(text.stdout.split(token!).length - 1).toBe(1);
    expect(text.stdout).toContain("shown only this once");

    const duplicate = await cli("token", "create", "--workspace", s, "--name", "deploy");
    expect(duplicate.code).toBe(2);
    expect(duplicate.stderr).toContain(`already has a live token named "deploy"`);

    // Only the hash is stored: no column of any token row holds the token.
    const rows = await read<Record<string, unknown>>(target(), statement("SELECT t.* FROM api_tokens t JOIN workspaces w ON w.id = t.workspace_id WHERE w.slug = ?", s));
    expect(rows).toHaveLength(1);
    expect(rows[0]!.token_hash).toBe(createHash("sha256").update(token!).digest("hex"));
    expect(JSON.stringify(rows)).not.toContain(token!.slice(4));

    const listed = await cli("token", "list", "--workspace", s);
    expect(listed.stdout).not.toContain(token!.slice(4));
    expect(listed.stdout).toMatch(/^deploy\s+\S+Z\s+never\s+live$/m);

    const api = (t: string) => fetch(`${baseUrl}/api/v1/runs`, { headers: { authorization: `Bearer ${t}` } });
    const ok = await api(token!);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ runs: [], nextCursor: null });
    const [used] = jsonOut(await cli("token", "list", "--workspace", s, "--json"), tokenListJson);
    expect(used).toMatchObject({ name: "deploy", revoked: false, revokedAt: null, lastUsedAt: expect.any(String) });

    const revoked = await cli("token", "revoke", "--workspace", s, "--name", "deploy");
    expect(revoked.code).toBe(0);
    expect((await api(token!)).status).toBe(401);
    const [after] = jsonOut(await cli("token", "list", "--workspace", s, "--json"), tokenListJson);
    expect(after).toMatchObject({ name: "deploy", revoked: true, revokedAt: expect.any(String), lastUsedAt: used!.lastUsedAt });
    expect(await cli("token", "list", "--workspace", s)).toMatchObject({ stdout: expect.stringMatching(/^deploy\s.*\srevoked \S+Z$/m) });

    const twice = await cli("token", "revoke", "--workspace", s, "--name", "deploy");
    expect(twice.code).toBe(2);

    // Rotation: the name is free again once revoked; the new token works, the old one stays refused.
    const rotated = jsonOut(await cli("token", "create", "--workspace", s, "--name", "deploy", "--json"), tokenCreatedJson);
    expect(rotated.token).not.toBe(token);
    expect((await api(rotated.token)).status).toBe(200);
    expect((await api(token!)).status).toBe(401);
    expect(jsonOut(await cli("token", "list", "--workspace", s, "--json"), tokenListJson).map((t) => [t.name, t.revoked])).toEqual([
      ["deploy", false],
      ["deploy", true],
    ]);
    expect((await auditOf(s)).map((e) => e.action)).toEqual(["workspace.created", "api_token.created", "api_token.revoked", "api_token.created"]);
  }, SLOW);
});

describe("the CLI's writes", () => {
  it("are all-or-nothing: a statement that fails undoes the ones before it", async () => {
    const s = slug("atomic");
    const attempt = write(
      target(),
      [
        statement("INSERT INTO workspaces (id, slug, name, created_at) VALUES (?, ?, ?, ?)", `ws_${s}`, s, "Atomic", 1),
        // Violates memberships_role_ck.
        statement("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?, 'usr_x', 'admin', 1)", `ws_${s}`),
      ],
      statement("SELECT 1 AS done"),
    );
    await expect(attempt).rejects.toThrow(DatabaseError);
    await expect(attempt).rejects.toThrow(/CHECK constraint failed/);
    expect(await read(target(), statement("SELECT id FROM workspaces WHERE slug = ?", s))).toEqual([]);
  });
});
