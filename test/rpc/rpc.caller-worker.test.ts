/**
 * Two Workers: examples/caller-worker runs beside oplife (vitest.config.ts
 * bundles it and reads its service binding from its own wrangler.toml), and
 * reaches oplife's `OplifeRpc` entrypoint over that binding. The test only
 * speaks HTTP to the caller (`env.CALLER`); everything it sees of oplife came
 * through RPC, and every effect is checked in oplife's D1.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { z } from "zod";
import { DEMO_BODY, apiClient, call, postInit, runEnvelope, runJsonSchema, runPage, runsInWorkspace, sha256Hex } from "../support/api";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, storedRow } from "../support/runs";
import { CALLER_TOKEN } from "./caller-token";

// One workspace for the file: the caller's token is a fixed secret in its config, so its row is
// stored once; the one test that revokes it restores it before it ends.
let workspaceId = "";
const TOKEN_NAME = "caller example";

/** What `npm run oplife -- token create` stores for the caller's secret: its SHA-256 only. */
beforeAll(async () => {
  workspaceId = await makeWorkspace("caller");
  await env.DB.prepare("INSERT INTO api_tokens (id, workspace_id, name, token_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, NULL)")
    .bind(`tok_caller_${crypto.randomUUID()}`, workspaceId, TOKEN_NAME, await sha256Hex(CALLER_TOKEN), Date.now())
    .run();
});

/** The caller's answer to POST /exports: oplife's start answer without `ok`. */
const started = z.object({ run: runJsonSchema, created: z.boolean() }).strict();

function callCaller(path: string, init: RequestInit = {}): Promise<Response> {
  return env.CALLER.fetch(new Request(new URL(path, "https://caller.test"), init));
}

describe("examples/caller-worker over a service binding", () => {
  it("POST /exports starts a demo.work run in the token's workspace, with the token as its actor", async () => {
    const before = await runsInWorkspace(workspaceId);
    const res = await callCaller("/exports", { method: "POST", body: JSON.stringify({ rows: 4 }) });
    expect(res.status).toBe(202);
    const { run, created } = started.parse(await res.json());
    expect(created).toBe(true);
    expect(run).toMatchObject({ workspaceId, type: "demo.work", status: "queued" });

    const row = await storedRow(run.id);
    expect(row).toMatchObject({ workspace_id: workspaceId, initiator: `api-token:${TOKEN_NAME}` });
    expect(JSON.parse(row.input)).toEqual({ steps: 4, stepMs: 0 });
    expect((await eventsOf(run.id)).filter((e) => e.action === "run.queued").map((e) => e.actor)).toEqual([`api-token:${TOKEN_NAME}`]);
    expect(await runsInWorkspace(workspaceId)).toBe(before + 1);

    const read = await callCaller(`/exports/${run.id}`);
    expect(read.status).toBe(200);
    expect(runEnvelope.parse(await read.json()).run.id).toBe(run.id);
  });

  it("a retried request (same x-request-id) is the same run, answered 200", async () => {
    const init = () => ({ method: "POST", body: JSON.stringify({ rows: 2 }), headers: { "x-request-id": "req-42" } });
    const first = await callCaller("/exports", init());
    const second = await callCaller("/exports", init());
    expect([first.status, second.status]).toEqual([202, 200]);
    const a = started.parse(await first.json()).run;
    const b = started.parse(await second.json()).run;
    expect(b.id).toBe(a.id);
    expect((await storedRow(a.id)).idempotency_key).toBe("export-req-42");
  });

  it("GET /exports lists the workspace's runs through RPC, with the limit passed on", async () => {
    await callCaller("/exports", { method: "POST", body: "{}" });
    await callCaller("/exports", { method: "POST", body: "{}" });
    const res = await callCaller("/exports?limit=1");
    expect(res.status).toBe(200);
    const page = runPage.parse(await res.json());
    expect(page.runs).toHaveLength(1);
    expect(page.runs[0]?.workspaceId).toBe(workspaceId);
    expect(page.nextCursor).not.toBeNull();
  });

  it("another workspace's run is a 404 problem through the caller, and bad input its 422", async () => {
    const other = await apiClient("caller-other");
    const theirs = runEnvelope.parse(await (await call("/api/v1/runs", postInit(other.token, DEMO_BODY))).json()).run;
    const res = await callCaller(`/exports/${theirs.id}`);
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(await res.json()).toMatchObject({ status: 404, type: "https://oplife.dev/problems/not-found" });

    const before = await runsInWorkspace(workspaceId);
    const bad = await callCaller("/exports", { method: "POST", body: JSON.stringify({ rows: 0 }) });
    expect(bad.status).toBe(422);
    expect(await bad.json()).toMatchObject({ status: 422, errors: [{ path: "input.steps" }] });
    expect(await runsInWorkspace(workspaceId)).toBe(before);
  });

  it("once its token is revoked, the caller gets 401 and starts nothing", async () => {
    const before = await runsInWorkspace(workspaceId);
    await env.DB.prepare("UPDATE api_tokens SET revoked_at = ? WHERE workspace_id = ?").bind(Date.now(), workspaceId).run();
    try {
      const res = await callCaller("/exports", { method: "POST", body: "{}" });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ type: "https://oplife.dev/problems/unauthorized" });
      expect(await runsInWorkspace(workspaceId)).toBe(before);
    } finally {
      await env.DB.prepare("UPDATE api_tokens SET revoked_at = NULL WHERE workspace_id = ?").bind(workspaceId).run();
    }
  });
});
