/**
 * OplifeRpc (src/rpc/entrypoint.ts) called across a real RPC boundary: the
 * Worker's own `exports.OplifeRpc` loopback, as a service binding would reach
 * it (arguments and answers are structured-cloned). What it must share with
 * the HTTP API: the same validation and problems (the same 422 body for the
 * same bad request), workspace scoping (another workspace's run is a 404),
 * the token as the audit actor, and idempotent replays.
 */
import { createExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { OplifeRpc, type RpcProblem } from "../../src/rpc/entrypoint";
import { DEMO_BODY, apiClient, call, postInit, runsInWorkspace, seedToken } from "../support/api";
import { DEMO_INPUT } from "../support/demo";
import { d1FailingPrepare } from "../support/d1";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, storedRow } from "../support/runs";

const rpc = exports.OplifeRpc;

/** The problem of a refused call, failing the test if the call succeeded. */
function problemOf(result: { ok: true } | { ok: false; problem: RpcProblem }): RpcProblem {
  if (result.ok) throw new Error(`expected a problem, got ${JSON.stringify(result)}`);
  return result.problem;
}

describe("OplifeRpc.start", () => {
  it("starts a run in the token's workspace, with the token as the actor; a replay with the same key is the same run", async () => {
    const client = await apiClient("rpc-start");
    const started = await rpc.start(client.token, DEMO_BODY, { idempotencyKey: "rpc-once" });
    if (!started.ok) throw new Error(JSON.stringify(started.problem));
    expect(started.created).toBe(true);
    expect(started.run).toMatchObject({ workspaceId: client.workspaceId, type: "demo.work", status: "queued", attempt: 0 });

    expect(await storedRow(started.run.id)).toMatchObject({ workspace_id: client.workspaceId, idempotency_key: "rpc-once", initiator: "api-token:test token" });
    const queued = (await eventsOf(started.run.id)).filter((e) => e.action === "run.queued");
    expect(queued.map((e) => e.actor)).toEqual(["api-token:test token"]);

    const replay = await rpc.start(client.token, DEMO_BODY, { idempotencyKey: "rpc-once" });
    expect(replay).toMatchObject({ ok: true, created: false, run: { id: started.run.id } });
    const conflict = problemOf(await rpc.start(client.token, { type: "demo.work", input: { steps: 9, stepMs: 0 } }, { idempotencyKey: "rpc-once" }));
    expect(conflict).toMatchObject({ status: 409, type: "https://oplife.dev/problems/idempotency-key-reused", runId: started.run.id });
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
  });

  it("refuses what the HTTP API refuses, with the same problem body", async () => {
    const client = await apiClient("rpc-same");
    const bad = [
      { type: "demo.work", input: { steps: -1, stepMs: 0 } },
      { type: "no.such.type" },
      { type: "demo.work", input: DEMO_INPUT, extra: true },
      { type: "" },
    ];
    for (const body of bad) {
      const viaRpc = problemOf(await rpc.start(client.token, body));
      const viaHttp: unknown = await (await call("/api/v1/runs", postInit(client.token, body))).json();
      expect(viaRpc.status).toBe(422);
      // The same problem but for `instance` (the HTTP path, or the RPC method) and the RPC's wording of "request".
      const { instance: _r, detail: rpcDetail, ...rpcRest } = viaRpc;
      const { instance: _h, detail: httpDetail, ...httpRest } = viaHttp as typeof viaRpc;
      expect(rpcRest).toEqual(httpRest);
      expect(rpcDetail?.replace("request is", "request body is")).toBe(httpDetail);
    }
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("refuses an input that is not plain JSON (a Date, a Map, undefined inside) rather than storing something else", async () => {
    const client = await apiClient("rpc-json");
    for (const input of [{ steps: 3, stepMs: 0, at: new Date() }, new Map([["steps", 3]]), { steps: 3, stepMs: 0, later: undefined }]) {
      const problem = problemOf(await rpc.start(client.token, { type: "demo.work", input }));
      expect(problem).toMatchObject({ status: 422, type: "https://oplife.dev/problems/validation-failed" });
      expect(problem.errors).toEqual([expect.objectContaining({ path: expect.stringMatching(/^input/) })]);
    }
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("an Idempotency-Key the HTTP API would refuse is a 400 here too", async () => {
    const client = await apiClient("rpc-key");
    for (const idempotencyKey of ["", "has space", "x".repeat(256)]) {
      const problem = problemOf(await rpc.start(client.token, DEMO_BODY, { idempotencyKey }));
      expect(problem).toMatchObject({ status: 400, errors: [{ path: "idempotencyKey", message: "invalid" }] });
    }
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });
});

describe("OplifeRpc reads: get, events, list", () => {
  it("reads the workspace's own runs, and another workspace's run is a 404", async () => {
    const client = await apiClient("rpc-read");
    const stranger = await apiClient("rpc-stranger");
    const started = await rpc.start(client.token, DEMO_BODY);
    if (!started.ok) throw new Error(JSON.stringify(started.problem));
    const id = started.run.id;

    expect(await rpc.get(client.token, id)).toMatchObject({ ok: true, run: { id, workspaceId: client.workspaceId } });
    const events = await rpc.events(client.token, id);
    if (!events.ok) throw new Error(JSON.stringify(events.problem));
    expect(events.events.map((e) => e.action)).toContain("run.queued");
    expect(await rpc.list(client.token)).toMatchObject({ ok: true, runs: [{ id }], nextCursor: null });

    for (const refused of [await rpc.get(stranger.token, id), await rpc.events(stranger.token, id), await rpc.get(client.token, "run_01JH0000000000000000000000")]) {
      expect(problemOf(refused)).toMatchObject({ status: 404, type: "https://oplife.dev/problems/not-found" });
    }
    expect(await rpc.list(stranger.token)).toEqual({ ok: true, runs: [], nextCursor: null });
  });

  it("list pages with a number limit and the cursor it gave, and refuses a bad limit or filter with the field named", async () => {
    const client = await apiClient("rpc-list");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await rpc.start(client.token, DEMO_BODY);
      if (!r.ok) throw new Error(JSON.stringify(r.problem));
      ids.push(r.run.id);
    }
    const first = await rpc.list(client.token, { limit: 2 });
    if (!first.ok) throw new Error(JSON.stringify(first.problem));
    expect(first.runs.map((r) => r.id)).toEqual([ids[2], ids[1]]);
    expect(first.nextCursor).not.toBeNull();
    const second = await rpc.list(client.token, { limit: 2, cursor: first.nextCursor ?? "" });
    expect(second).toMatchObject({ ok: true, runs: [{ id: ids[0] }], nextCursor: null });

    for (const [options, path] of [
      [{ limit: 0 }, "limit"],
      [{ limit: 1.5 }, "limit"],
      [{ limit: 101 }, "limit"],
      [{ status: "bogus" }, "status"],
      [{ cursor: "not-ours" }, "cursor"],
    ] as const) {
      const problem = problemOf(await rpc.list(client.token, options));
      expect(problem.status).toBe(400);
      expect(problem.errors).toEqual([expect.objectContaining({ path })]);
    }
  });
});

describe("OplifeRpc authentication", () => {
  it("every method answers 401 without a live token of a workspace, and creates nothing", async () => {
    const workspaceId = await makeWorkspace("rpc-auth");
    const revoked = await seedToken(workspaceId, { revoked: true });
    const live = await apiClient("rpc-auth-live");
    const started = await rpc.start(live.token, DEMO_BODY);
    if (!started.ok) throw new Error(JSON.stringify(started.problem));
    const id = started.run.id;

    const badTokens: unknown[] = [revoked.token, "", "olt_unknown_token_xxxxxxxx", undefined, null, 42, `${live.token} `];
    for (const token of badTokens) {
      const t = token as string;
      const calls = [
        rpc.start(t, DEMO_BODY),
        rpc.get(t, id),
        rpc.events(t, id),
        rpc.list(t),
        rpc.cancel(t, id),
        rpc.retry(t, id),
      ];
      for (const result of await Promise.all(calls)) {
        expect(problemOf(result)).toMatchObject({ status: 401, type: "https://oplife.dev/problems/unauthorized" });
      }
    }
    expect(await runsInWorkspace(workspaceId)).toBe(0);
    expect(await runsInWorkspace(live.workspaceId)).toBe(1);
  });
});

describe("OplifeRpc cancel and retry", () => {
  it("cancel ends a queued run cancelled with the token as the actor; a second cancel is a 409 that changes nothing; another workspace gets 404", async () => {
    const client = await apiClient("rpc-cancel");
    const other = await apiClient("rpc-cancel-other");
    const started = await rpc.start(client.token, DEMO_BODY);
    if (!started.ok) throw new Error(JSON.stringify(started.problem));
    const id = started.run.id;

    expect(problemOf(await rpc.cancel(other.token, id))).toMatchObject({ status: 404 });
    expect(problemOf(await rpc.cancel(client.token, id, { reason: "x".repeat(501) }))).toMatchObject({ status: 422 });
    expect((await storedRow(id)).status).toBe("queued");

    const cancelled = await rpc.cancel(client.token, id, { reason: "wrong input" });
    if (!cancelled.ok) throw new Error(JSON.stringify(cancelled.problem));
    expect(cancelled.cancelled).toBe(true);
    expect(cancelled.run).toMatchObject({ id, status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled", cancelRequestedBy: "api-token:test token" });
    const before = await storedRow(id);
    expect(problemOf(await rpc.cancel(client.token, id))).toMatchObject({ status: 409, type: "https://oplife.dev/problems/run-terminal" });
    expect((await storedRow(id)).updated_at).toBe(before.updated_at);
    expect((await eventsOf(id)).filter((e) => e.action === "run.cancelled")).toHaveLength(1);
  });

  it("retry makes a new run with retryOf of a completed run only; the original lists it in retriedBy", async () => {
    const client = await apiClient("rpc-retry");
    const started = await rpc.start(client.token, DEMO_BODY);
    if (!started.ok) throw new Error(JSON.stringify(started.problem));
    const id = started.run.id;

    expect(problemOf(await rpc.retry(client.token, id))).toMatchObject({ status: 409, type: "https://oplife.dev/problems/run-not-terminal" });
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);

    const cancelled = await rpc.cancel(client.token, id);
    if (!cancelled.ok) throw new Error(JSON.stringify(cancelled.problem));
    const retried = await rpc.retry(client.token, id, { idempotencyKey: "rpc-retry-1" });
    if (!retried.ok) throw new Error(JSON.stringify(retried.problem));
    expect(retried.created).toBe(true);
    expect(retried.run).toMatchObject({ type: "demo.work", status: "queued", retryOf: id, workspaceId: client.workspaceId });
    const replay = await rpc.retry(client.token, id, { idempotencyKey: "rpc-retry-1" });
    if (!replay.ok) throw new Error(JSON.stringify(replay.problem));
    expect(replay).toMatchObject({ created: false, run: { id: retried.run.id } });
    const original = await rpc.get(client.token, id);
    if (!original.ok) throw new Error(JSON.stringify(original.problem));
    expect(original.run.retriedBy).toEqual([retried.run.id]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(2);
  });
});

describe("OplifeRpc on an unexpected failure", () => {
  it("answers a bare 500 problem and logs one line; no raw error crosses the binding", async () => {
    const client = await apiClient("rpc-500");
    // D1 answers the token lookup, then fails the run's read as an outage would.
    const db = d1FailingPrepare((sql) => sql.includes("operation_runs"), () => new Error("injected: D1_ERROR secret-detail"));
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const direct = new OplifeRpc(createExecutionContext(), { ...env, DB: db });
    const problem = problemOf(await direct.get(client.token, "run_01JH0000000000000000000000"));
    expect(problem).toMatchObject({ status: 500, type: "https://oplife.dev/problems/internal" });
    expect(JSON.stringify(problem)).not.toContain("secret-detail");
    expect(errors.mock.calls.map((c) => JSON.parse(String(c[0])).event)).toEqual(["rpc.unhandled_error"]);
    errors.mockRestore();
  });
});
