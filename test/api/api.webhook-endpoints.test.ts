/**
 * `/api/v1/webhook-endpoints`: create answers the signing secret once, list
 * and get never show it, delete removes the endpoint and its log; a token of
 * another workspace gets 404 for every endpoint of this one; bad URLs and
 * bodies are clear 4xx problems that write nothing; each change is audited.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";
import { MAX_ENDPOINTS_PER_WORKSPACE } from "../../src/webhooks/endpoints";
import { apiClient, call, callWith, expectProblem, postInit } from "../support/api";
import { newRun } from "../support/runs";
import { delayRecorder } from "../support/webhooks";

const BASE = "/api/v1/webhook-endpoints";

interface EndpointJson {
  id: string;
  url: string;
  description: string | null;
  eventTypes: string[] | null;
  createdAt: string;
}

async function create(token: string, body: unknown): Promise<{ res: Response; json: { endpoint: EndpointJson; secret: string } }> {
  const res = await call(BASE, postInit(token, body));
  const text = await res.text();
  expect(res.status, text).toBe(201);
  return { res, json: JSON.parse(text) as { endpoint: EndpointJson; secret: string } };
}

const countEndpoints = async (ws: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM webhook_endpoints WHERE workspace_id = ?").bind(ws).first<{ n: number }>())!.n;

describe("create, list, get, delete", () => {
  it("create answers 201 with the whsec_ secret once; list and get never carry it; delete answers 204, then 404", async () => {
    const c = await apiClient("wh-api");
    const { res, json } = await create(c.token, { url: "https://hooks.example.com/a", description: "billing", eventTypes: ["run.completed"] });
    expect(json.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(json.endpoint).toMatchObject({ url: "https://hooks.example.com/a", description: "billing", eventTypes: ["run.completed"] });
    expect(json.endpoint.id).toMatch(/^whe_/);
    expect(res.headers.get("location")).toBe(`${BASE}/${json.endpoint.id}`);
    expect(res.headers.get("cache-control")).toBe("no-store");

    const list = await call(BASE, { token: c.token });
    const listText = await list.text();
    expect(list.status).toBe(200);
    expect(JSON.parse(listText)).toEqual({ endpoints: [json.endpoint] });
    expect(listText).not.toContain(json.secret.slice(6));
    const one = await call(`${BASE}/${json.endpoint.id}`, { token: c.token });
    const oneText = await one.text();
    expect(JSON.parse(oneText)).toEqual({ endpoint: json.endpoint });
    expect(oneText).not.toContain(json.secret.slice(6));

    const del = await call(`${BASE}/${json.endpoint.id}`, { method: "DELETE", token: c.token });
    expect(del.status).toBe(204);
    await expectProblem(await call(`${BASE}/${json.endpoint.id}`, { token: c.token }), 404);
    await expectProblem(await call(`${BASE}/${json.endpoint.id}`, { method: "DELETE", token: c.token }), 404);
    expect(await countEndpoints(c.workspaceId)).toBe(0);

    const events = (
      await env.DB.prepare("SELECT actor, action, subject_id FROM audit_events WHERE workspace_id = ? AND subject_type = 'webhook_endpoint' ORDER BY id")
        .bind(c.workspaceId)
        .all<{ actor: string; action: string; subject_id: string }>()
    ).results;
    expect(events).toEqual([
      { actor: "api-token:test token", action: "webhook_endpoint.created", subject_id: json.endpoint.id },
      { actor: "api-token:test token", action: "webhook_endpoint.deleted", subject_id: json.endpoint.id },
    ]);
  });

  it("a token of another workspace sees none of them: 404 on get, delete and deliveries, and an empty list", async () => {
    const owner = await apiClient("wh-owner");
    const stranger = await apiClient("wh-stranger");
    const { json } = await create(owner.token, { url: "https://hooks.example.com/b" });
    for (const init of [{}, { method: "DELETE" }]) await expectProblem(await call(`${BASE}/${json.endpoint.id}`, { ...init, token: stranger.token }), 404);
    await expectProblem(await call(`${BASE}/${json.endpoint.id}/deliveries`, { token: stranger.token }), 404);
    expect(await (await call(BASE, { token: stranger.token })).json()).toEqual({ endpoints: [] });
    expect(await countEndpoints(owner.workspaceId)).toBe(1);
  });

  it("without a token, 401", async () => {
    await expectProblem(await call(BASE), 401);
    await expectProblem(await call(BASE, postInit(undefined, { url: "https://hooks.example.com/" })), 401);
  });

  it("the delivery log lists a completed run's delivery with its webhook-id, status and tries", async () => {
    const c = await apiClient("wh-log");
    const { json } = await create(c.token, { url: "https://hooks.example.com/log" });
    const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, webhooks: delayRecorder().queue });
    const run = await newRun(svc, c.workspaceId);
    await svc.claim(run.id, 1);
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    const res = await call(`${BASE}/${json.endpoint.id}/deliveries`, { token: c.token });
    const body = (await res.json()) as { deliveries: Array<Record<string, unknown>> };
    expect(body.deliveries).toHaveLength(1);
    expect(body.deliveries[0]).toMatchObject({ runId: run.id, eventType: "run.completed", status: "pending", attempts: 0, tries: [] });
    expect(body.deliveries[0]!.webhookId).toMatch(/^msg_/);
    expect(JSON.stringify(body)).not.toContain(json.secret.slice(6));
  });
});

describe("bad input gets a clear error and writes nothing", () => {
  it.each([
    [{ url: "not a url" }, "url"],
    [{ url: "ftp://hooks.example.com/" }, "url"],
    [{}, "url"],
    [{ url: "https://hooks.example.com/", eventTypes: [] }, "eventTypes"],
    [{ url: "https://hooks.example.com/", eventTypes: ["run.started"] }, "eventTypes.0"],
    [{ url: "https://hooks.example.com/", secret: "whsec_mine" }, "(root)"],
  ])("%j: 422 naming %s", async (body, path) => {
    const c = await apiClient("wh-bad");
    const problem = await expectProblem(await call(BASE, postInit(c.token, body)), 422);
    expect(JSON.stringify(problem.errors)).toContain(`"path":"${path}"`);
    expect(await countEndpoints(c.workspaceId)).toBe(0);
  });

  it("malformed JSON: 400", async () => {
    const c = await apiClient("wh-json");
    await expectProblem(await call(BASE, postInit(c.token, "{")), 400);
  });

  it("in production a loopback or private target is refused; locally it is accepted", async () => {
    const c = await apiClient("wh-private");
    const production = { APP_ENV: "production" } as unknown as Partial<Env>;
    for (const url of ["http://127.0.0.1:9999/hook", "https://127.0.0.1/hook", "https://10.1.2.3/", "https://localhost/"]) {
      const problem = await expectProblem(await callWith(production, BASE, postInit(c.token, { url })), 422);
      expect(problem.detail).toMatch(/https|public/);
    }
    expect(await countEndpoints(c.workspaceId)).toBe(0);
    // wrangler.toml's APP_ENV is "local": a developer's receiver on this machine is fine.
    await create(c.token, { url: "http://127.0.0.1:9999/hook" });
  });

  it(`at most ${MAX_ENDPOINTS_PER_WORKSPACE} endpoints: the next is 409`, async () => {
    const c = await apiClient("wh-limit");
    for (let i = 0; i < MAX_ENDPOINTS_PER_WORKSPACE; i++) await create(c.token, { url: `https://hooks.example.com/${i}` });
    await expectProblem(await call(BASE, postInit(c.token, { url: "https://hooks.example.com/one-more" })), 409);
    expect(await countEndpoints(c.workspaceId)).toBe(MAX_ENDPOINTS_PER_WORKSPACE);
  });
});
