/**
 * /admin/settings/webhooks: owners list, add (the secret shown once) and
 * delete endpoints, and read each one's delivery log; operators and viewers
 * get 403, another workspace's endpoint is a 404, cross-origin posts are
 * refused, and what a receiver answered is shown escaped.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { MembershipRole } from "../../src/db/schema";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";
import { one, parseHtml, seedUser, signIn, squash, type AdminClient } from "../support/admin";
import { makeWorkspace } from "../support/fixtures";
import { newRun } from "../support/runs";
import { delayRecorder, seedEndpoint } from "../support/webhooks";

async function team(label: string, role: MembershipRole = "owner"): Promise<{ ws: string; client: AdminClient }> {
  const ws = await makeWorkspace(label);
  const user = await seedUser([[ws, role]], label);
  return { ws, client: await signIn(user.id) };
}

const countEndpoints = async (ws: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM webhook_endpoints WHERE workspace_id = ?").bind(ws).first<{ n: number }>())!.n;

describe("webhooks settings: who may", () => {
  it.each(["operator", "viewer"] as const)("%s: 403 on every webhooks route, and nothing is written", async (role) => {
    const t = await team(`wh-deny-${role}`, role);
    const ep = await seedEndpoint(t.ws);
    const answers = await Promise.all([
      t.client.get("/admin/settings/webhooks"),
      t.client.get(`/admin/settings/webhooks/${ep.id}`),
      t.client.post("/admin/settings/webhooks", { url: "https://hooks.example.com/x" }),
      t.client.post(`/admin/settings/webhooks/${ep.id}/delete`, {}),
    ]);
    expect(answers.map((r) => r.status)).toEqual([403, 403, 403, 403]);
    expect(await countEndpoints(t.ws)).toBe(1);
  });

  it("another workspace's endpoint is a 404 to view or delete", async () => {
    const mine = await team("wh-mine");
    const theirs = await team("wh-theirs");
    const ep = await seedEndpoint(theirs.ws);
    expect((await mine.client.get(`/admin/settings/webhooks/${ep.id}`)).status).toBe(404);
    expect((await mine.client.post(`/admin/settings/webhooks/${ep.id}/delete`, {})).status).toBe(404);
    expect(await countEndpoints(theirs.ws)).toBe(1);
    expect(await mine.client.html("/admin/settings/webhooks")).not.toContain(ep.url);
  });

  it("refuses a cross-origin form post (CSRF) and writes nothing", async () => {
    const t = await team("wh-csrf");
    const ep = await seedEndpoint(t.ws);
    const evil = { origin: "https://evil.example" };
    expect((await t.client.post("/admin/settings/webhooks", { url: "https://evil.example/hook" }, evil)).status).toBe(403);
    expect((await t.client.post(`/admin/settings/webhooks/${ep.id}/delete`, {}, evil)).status).toBe(403);
    expect(await countEndpoints(t.ws)).toBe(1);
  });
});

describe("webhooks settings: owners", () => {
  it("add shows the signing secret once; the list then shows the endpoint without it; delete removes it", async () => {
    const t = await team("wh-owner");
    const res = await t.client.post("/admin/settings/webhooks", { url: "https://hooks.example.com/orders", description: "orders" });
    const html = await res.text();
    expect(res.status).toBe(200);
    const secret = (await one(html, "code[data-secret]")).text;
    expect(secret).toMatch(/^whsec_/);
    const stored = await env.DB.prepare("SELECT id, secret FROM webhook_endpoints WHERE workspace_id = ?").bind(t.ws).first<{ id: string; secret: string }>();
    expect(stored!.secret).toBe(secret);

    const list = await t.client.html("/admin/settings/webhooks");
    expect(list).not.toContain(secret);
    const row = await one(list, `tr[data-endpoint-id="${stored!.id}"]`);
    expect(squash(row.text)).toContain("https://hooks.example.com/orders");
    expect(squash(row.text)).toContain("orders");

    const del = await t.client.post(`/admin/settings/webhooks/${stored!.id}/delete`, {});
    expect(del.status).toBe(303);
    expect(await countEndpoints(t.ws)).toBe(0);
    const actions = (
      await env.DB.prepare("SELECT action, actor FROM audit_events WHERE workspace_id = ? AND subject_type = 'webhook_endpoint' ORDER BY id").bind(t.ws).all<{ action: string; actor: string }>()
    ).results;
    expect(actions.map((a) => a.action)).toEqual(["webhook_endpoint.created", "webhook_endpoint.deleted"]);
    expect(actions[0]!.actor).toMatch(/^user:/);
  });

  it("a refused URL is a 400 with the reason, and nothing is written", async () => {
    const t = await team("wh-bad-url");
    const res = await t.client.post("/admin/settings/webhooks", { url: "ftp://hooks.example.com/" });
    expect(res.status).toBe(400);
    expect((await one(await res.text(), '[data-notice="error"]')).text).toContain("https or http");
    expect(await countEndpoints(t.ws)).toBe(0);
  });

  it("the delivery log shows each delivery's status, tries, last answer and next try, and escapes what a receiver said", async () => {
    const t = await team("wh-log");
    const ep = await seedEndpoint(t.ws);
    const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, webhooks: delayRecorder().queue });
    const run = await newRun(svc, t.ws);
    await svc.claim(run.id, 1);
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    const hostile = "<img src=x onerror=alert(1)>";
    const now = Date.now();
    await env.DB.prepare(
      "UPDATE webhook_deliveries SET attempts = 2, last_status_code = 500, last_error = 'Answered HTTP 500.', next_attempt_at = ?, attempt_log = ? WHERE run_id = ?",
    )
      .bind(
        now + 60_000,
        JSON.stringify([
          { attempt: 1, at: now - 20_000, statusCode: null, error: "No answer within 10000 ms.", excerpt: null },
          { attempt: 2, at: now - 5_000, statusCode: 500, error: "Answered HTTP 500.", excerpt: hostile },
        ]),
        run.id,
      )
      .run();
    const html = await t.client.html(`/admin/settings/webhooks/${ep.id}`);
    expect(html).not.toContain(hostile);
    const [row] = await parseHtml(html, "tr[data-webhook-id]");
    expect(row!.attrs["data-status"]).toBe("pending");
    const text = squash(row!.text);
    expect(text).toContain("Retrying");
    expect(text).toContain("HTTP 500");
    // The next try's time, as an absolute instant (the relative text depends on when the page renders).
    const times = (await parseHtml(html, "tr[data-webhook-id] time")).map((el) => el.attrs.datetime);
    expect(times).toContain(new Date(now + 60_000).toISOString());
    expect(text).toContain(hostile);
    expect((await parseHtml(html, "li[data-try]")).map((li) => li.attrs["data-try"])).toEqual(["1", "2"]);
  });
});
