/**
 * The owners' settings pages (/admin/settings): API tokens (created and shown
 * once, revoked, last use) and members (added by email, role changed,
 * removed). Who may: owners only (operators and viewers 403, another
 * workspace's token or member 404); cross-origin posts refused; each change an
 * audit event naming the owner by email, their id in the metadata.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MembershipRole } from "../../src/db/schema";
import { call, sha256Hex } from "../support/api";
import { AdminClient, one, parseHtml, seedUser, signIn, squash, type TestUser } from "../support/admin";
import { makeWorkspace } from "../support/fixtures";

interface Team {
  ws: string;
  owner: TestUser;
  client: AdminClient;
}

async function team(label: string, role: MembershipRole = "owner"): Promise<Team> {
  const ws = await makeWorkspace(label);
  const owner = await seedUser([[ws, role]], label);
  return { ws, owner, client: await signIn(owner.id) };
}

const countTokens = async (ws: string) => (await env.DB.prepare("SELECT count(*) AS n FROM api_tokens WHERE workspace_id = ?").bind(ws).first<{ n: number }>())!.n;
const roleOf = async (ws: string, userId: string) =>
  (await env.DB.prepare("SELECT role FROM memberships WHERE workspace_id = ? AND user_id = ?").bind(ws, userId).first<{ role: string }>())?.role ?? null;
const events = async (ws: string) =>
  (await env.DB.prepare("SELECT actor, action, subject_type AS subjectType, metadata FROM audit_events WHERE workspace_id = ? ORDER BY id").bind(ws).all<{
    actor: string;
    action: string;
    subjectType: string;
    metadata: string;
  }>()).results;

async function createToken(client: AdminClient, name: string): Promise<{ res: Response; html: string; token: string | undefined }> {
  const res = await client.post("/admin/settings/tokens", { name });
  const html = await res.text();
  const shown = await parseHtml(html, "code[data-token]");
  return { res, html, token: shown[0]?.text };
}

async function tokenIdNamed(ws: string, name: string): Promise<string> {
  const row = await env.DB.prepare("SELECT id FROM api_tokens WHERE workspace_id = ? AND name = ? ORDER BY created_at DESC").bind(ws, name).first<{ id: string }>();
  return row!.id;
}

describe("settings: who may", () => {
  it.each(["operator", "viewer"] as const)("%s: 403 on every settings route, and nothing is written", async (role) => {
    const t = await team(`deny-${role}`, role);
    const other = await seedUser([[t.ws, "viewer"]], "other");
    await env.DB.prepare("INSERT INTO api_tokens (id, workspace_id, name, token_hash, created_at) VALUES (?, ?, 'x', ?, 1)").bind(`tok_${t.ws}`, t.ws, `h_${t.ws}`).run();
    const attempts: Array<Promise<Response>> = [
      t.client.get("/admin/settings"),
      t.client.get("/admin/settings/tokens"),
      t.client.get("/admin/settings/members"),
      t.client.post("/admin/settings/tokens", { name: "sneaky" }),
      t.client.post(`/admin/settings/tokens/tok_${t.ws}/revoke`, {}),
      t.client.post("/admin/settings/members", { email: "new@x.test", role: "owner" }),
      t.client.post(`/admin/settings/members/${t.owner.id}/role`, { role: "owner" }),
      t.client.post(`/admin/settings/members/${other.id}/remove`, {}),
    ];
    for (const res of await Promise.all(attempts)) expect(res.status).toBe(403);
    expect(await countTokens(t.ws)).toBe(1);
    expect(await roleOf(t.ws, t.owner.id)).toBe(role);
    expect(await roleOf(t.ws, other.id)).toBe("viewer");
    expect(await events(t.ws)).toEqual([]);
    // No Settings link for them either.
    expect(await parseHtml(await t.client.html("/admin/operations"), 'a[href="/admin/settings/tokens"]')).toHaveLength(0);
  });

  it("an owner sees the Settings link and both pages", async () => {
    const t = await team("allow");
    expect(await parseHtml(await t.client.html("/admin/operations"), 'a[href="/admin/settings/tokens"]')).toHaveLength(1);
    expect(squash((await one(await t.client.html("/admin/settings/tokens"), "h1")).text)).toBe("API tokens");
    expect(squash((await one(await t.client.html("/admin/settings/members"), "h1")).text)).toBe("Members");
  });

  it("another workspace's token or member is a 404, and stays as it was", async () => {
    const mine = await team("mine");
    const theirs = await team("theirs");
    await createToken(theirs.client, "their token");
    const theirToken = await tokenIdNamed(theirs.ws, "their token");
    const revoke = await mine.client.post(`/admin/settings/tokens/${theirToken}/revoke`, {});
    expect(revoke.status).toBe(404);
    expect((await env.DB.prepare("SELECT revoked_at FROM api_tokens WHERE id = ?").bind(theirToken).first<{ revoked_at: number | null }>())?.revoked_at).toBeNull();
    for (const path of [`/admin/settings/members/${theirs.owner.id}/remove`, `/admin/settings/members/${theirs.owner.id}/role`, "/admin/settings/members/usr_nobody/remove", "/admin/settings/tokens/not-a-token/revoke"]) {
      expect((await mine.client.post(path, { role: "viewer" })).status, path).toBe(404);
    }
    expect(await roleOf(theirs.ws, theirs.owner.id)).toBe("owner");
  });

  it("refuses a cross-origin form post (CSRF) and writes nothing", async () => {
    const t = await team("csrf");
    const res = await t.client.post("/admin/settings/tokens", { name: "forged" }, { origin: "https://evil.example" });
    expect(res.status).toBe(403);
    const member = await t.client.post("/admin/settings/members", { email: "evil@x.test", role: "owner" }, { origin: "https://evil.example" });
    expect(member.status).toBe(403);
    expect(await countTokens(t.ws)).toBe(0);
    expect(await events(t.ws)).toEqual([]);
  });
});

describe("settings: API tokens", () => {
  it("creates a token shown once, stores only its hash, and the token works until revoked", async () => {
    const t = await team("tokens");
    const { res, token } = await createToken(t.client, "CI deploy");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(token).toMatch(/^olt_[A-Za-z0-9_-]{43}$/);
    const id = await tokenIdNamed(t.ws, "CI deploy");
    const row = await env.DB.prepare("SELECT * FROM api_tokens WHERE id = ?").bind(id).first<Record<string, unknown>>();
    expect(row?.token_hash).toBe(await sha256Hex(token!));
    expect(JSON.stringify(row)).not.toContain(token!.slice(4));

    // Shown once: the list page never shows it again.
    const list = await t.client.html("/admin/settings/tokens");
    expect(list).not.toContain(token!.slice(4));
    const listed = await one(list, `tr[data-token-id="${id}"]`);
    expect(listed.attrs["data-state"]).toBe("live");
    expect(squash(listed.text)).toContain("never");

    expect((await call("/api/v1/runs", { token: token! })).status).toBe(200);
    const used = await one(await t.client.html("/admin/settings/tokens"), `tr[data-token-id="${id}"]`);
    expect(squash(used.text)).not.toContain("never");

    const revoked = await t.client.post(`/admin/settings/tokens/${id}/revoke`, {});
    expect(revoked.status).toBe(303);
    expect(revoked.headers.get("location")).toBe("/admin/settings/tokens");
    expect((await one(await t.client.html("/admin/settings/tokens"), `tr[data-token-id="${id}"]`)).attrs["data-state"]).toBe("revoked");
    expect((await call("/api/v1/runs", { token: token! })).status).toBe(401);
    // Revoking again changes nothing and writes no second event.
    expect((await t.client.post(`/admin/settings/tokens/${id}/revoke`, {})).status).toBe(303);

    const evs = await events(t.ws);
    expect(evs.map((e) => [e.actor, e.action, e.subjectType])).toEqual([
      [`user:${t.owner.email}`, "api_token.created", "api_token"],
      [`user:${t.owner.email}`, "api_token.revoked", "api_token"],
    ]);
    expect(JSON.parse(evs[0]!.metadata)).toEqual({ name: "CI deploy", actorId: t.owner.id });
  });

  it("refuses an empty name (400) and a live name taken (409), creating nothing", async () => {
    const t = await team("token-names");
    const empty = await createToken(t.client, "   ");
    expect(empty.res.status).toBe(400);
    expect(empty.token).toBeUndefined();
    expect(squash((await one(empty.html, '[data-notice="error"]')).text)).toBe("token name must not be empty");
    expect((await createToken(t.client, "deploy")).res.status).toBe(200);
    const again = await createToken(t.client, "deploy");
    expect(again.res.status).toBe(409);
    expect(again.token).toBeUndefined();
    expect(await countTokens(t.ws)).toBe(1);
  });

  it("escapes a token name with markup", async () => {
    const t = await team("token-xss");
    const { html } = await createToken(t.client, `<img src=x onerror=alert(1)>`);
    expect(html).not.toContain("<img src=x");
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
  });
});

describe("settings: members", () => {
  it("adds a person by email, changes their role, removes them; each an audit event naming the owner", async () => {
    const t = await team("members");
    const add = await t.client.post("/admin/settings/members", { email: "Grace@Example.test", role: "operator", name: "Grace H" });
    expect(add.status).toBe(303);
    const grace = await env.DB.prepare("SELECT id, email, name FROM users WHERE email = 'grace@example.test'").first<TestUser>();
    expect(grace).toMatchObject({ name: "Grace H" });
    expect(await roleOf(t.ws, grace!.id)).toBe("operator");
    const page = await t.client.html("/admin/settings/members");
    expect((await one(page, `tr[data-user-id="${grace!.id}"]`)).attrs["data-role"]).toBe("operator");

    const twice = await t.client.post("/admin/settings/members", { email: "grace@example.test", role: "viewer" });
    expect(twice.status).toBe(409);

    expect((await t.client.post(`/admin/settings/members/${grace!.id}/role`, { role: "owner" })).status).toBe(303);
    expect(await roleOf(t.ws, grace!.id)).toBe("owner");
    expect((await t.client.post(`/admin/settings/members/${grace!.id}/remove`, {})).status).toBe(303);
    expect(await roleOf(t.ws, grace!.id)).toBeNull();

    expect((await events(t.ws)).map((e) => [e.actor, e.action])).toEqual([
      [`user:${t.owner.email}`, "member.added"],
      [`user:${t.owner.email}`, "member.role_changed"],
      [`user:${t.owner.email}`, "member.removed"],
    ]);
  });

  it("the last owner can be neither demoted nor removed (409); with a second owner, they can", async () => {
    const t = await team("last-owner");
    for (const [path, form] of [
      [`/admin/settings/members/${t.owner.id}/role`, { role: "viewer" }],
      [`/admin/settings/members/${t.owner.id}/remove`, {}],
    ] as const) {
      const res = await t.client.post(path, form);
      expect(res.status, path).toBe(409);
      expect(await res.text()).toContain("is the last owner of this workspace");
    }
    expect(await roleOf(t.ws, t.owner.id)).toBe("owner");
    const second = await seedUser([[t.ws, "owner"]], "second");
    expect((await t.client.post(`/admin/settings/members/${t.owner.id}/role`, { role: "viewer" })).status).toBe(303);
    expect(await roleOf(t.ws, t.owner.id)).toBe("viewer");
    expect(await roleOf(t.ws, second.id)).toBe("owner");
  });

  it("refuses a bad email or role (400) and adds no one", async () => {
    const t = await team("bad-member");
    const cases = [
      { email: "not-an-email", role: "viewer" },
      { email: "a@b.test", role: "admin" },
      { email: "", role: "viewer" },
    ];
    for (const form of cases) expect((await t.client.post("/admin/settings/members", form)).status, JSON.stringify(form)).toBe(400);
    const count = await env.DB.prepare("SELECT count(*) AS n FROM memberships WHERE workspace_id = ?").bind(t.ws).first<{ n: number }>();
    expect(count?.n).toBe(1);
  });
});
