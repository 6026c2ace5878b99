/**
 * POST /api/v1/runs/{id}/retry on the Workers runtime with real D1 and real
 * trackers (contract section 7, retry as a new run): a new run of the same type
 * and input with `retryOf`, created through the same path as POST /runs (202
 * once its tracker holds it, 503 when it could not, Idempotency-Key); the
 * original untouched but linked (`retriedBy`, `run.retried`); only terminal
 * runs; another workspace's run is a 404.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { trackerFor } from "../../src/tracker";
import { createExecutionFailure, createQueued, createRunning, setRow } from "../support/admin";
import { apiClient, bodyOf, call, callWith, expectProblem, runEnvelope, runPage, type CallInit } from "../support/api";
import { trackerState } from "../support/execution";
import { runService } from "../support/fixtures";
import { eventsOf, onlyEvent, snapshot, storedRow } from "../support/runs";

function retryInit(token: string | undefined, headers: Record<string, string> = {}, body?: string): CallInit {
  return { method: "POST", headers, ...(body !== undefined ? { body } : {}), ...(token !== undefined ? { token } : {}) };
}

const retry = (runId: string, init: CallInit) => call(`/api/v1/runs/${runId}/retry`, init);

async function runCount(workspaceId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(workspaceId).first<{ n: number }>();
  return row?.n ?? -1;
}

/** A Durable Object namespace whose every stub call fails (the tracker unreachable). */
function unreachableTrackers(): DurableObjectNamespace<import("../../src/tracker").RunTracker> {
  return new Proxy(env.RUN_TRACKER, {
    get(target, prop) {
      if (prop === "getByName") {
        return () => {
          throw new Error("injected: Durable Objects unavailable");
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

describe("POST /api/v1/runs/{id}/retry", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("creates a new run of the same type and input with retryOf, held by its tracker; the original is untouched and lists it", async () => {
    const client = await apiClient("retry");
    const original = await createExecutionFailure(runService(), client.workspaceId);
    await setRow(original, "input = ?", JSON.stringify({ steps: 4, stepMs: 0, partialAtStep: 2 }));
    const before = await snapshot(original);

    const res = await retry(original, retryInit(client.token));
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    expect(res.headers.get("location")).toBe(`/api/v1/runs/${run.id}`);
    expect(run.id).not.toBe(original);
    expect(run).toMatchObject({
      type: "demo.work",
      status: "queued",
      outcome: "pending",
      attempt: 0,
      retryOf: original,
      retriedBy: [],
      output: null,
      workspaceId: client.workspaceId,
    });
    const stored = await storedRow(run.id);
    expect(JSON.parse(stored.input)).toEqual({ steps: 4, stepMs: 0, partialAtStep: 2 });
    expect(stored.retry_of).toBe(original);
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 0, dispatch: { n: 1, sends: 1, claimed: false } });

    // The original: its row exactly as it was, one new event naming the retry.
    const after = await snapshot(original);
    expect(after.row).toEqual(before.row);
    expect(after.events.slice(0, before.events.length)).toEqual(before.events);
    const retried = await onlyEvent(original, "run.retried");
    expect(retried).toMatchObject({ actor: "api-token:test token", metadata: { retryRunId: run.id, actorId: client.tokenId } });
    const queued = await onlyEvent(run.id, "run.queued");
    expect(queued).toMatchObject({ actor: "api-token:test token", metadata: { retryOf: original, actorId: client.tokenId } });

    // Each links to the other, in GET and in the list.
    const got = await bodyOf(await call(`/api/v1/runs/${original}`, { token: client.token }), runEnvelope);
    expect(got.run).toMatchObject({ retriedBy: [run.id], retryOf: null });
    const list = await bodyOf(await call("/api/v1/runs", { token: client.token }), runPage);
    expect(list.runs.map((r) => [r.id, r.retryOf, r.retriedBy])).toEqual([
      [run.id, original, []],
      [original, null, [run.id]],
    ]);
  });

  it("a retry of a retry links to its own original; retriedBy lists every retry, newest first", async () => {
    const client = await apiClient("retry-chain");
    const original = await createExecutionFailure(runService(), client.workspaceId);
    const first = (await bodyOf(await retry(original, retryInit(client.token)), runEnvelope)).run;
    const second = (await bodyOf(await retry(original, retryInit(client.token)), runEnvelope)).run;
    await setRow(first.id, "status = 'completed', outcome = 'failed', deadline_at = NULL, completed_at = ?", Date.now());
    const ofFirst = (await bodyOf(await retry(first.id, retryInit(client.token)), runEnvelope)).run;
    expect(ofFirst.retryOf).toBe(first.id);
    const got = await bodyOf(await call(`/api/v1/runs/${original}`, { token: client.token }), runEnvelope);
    expect(got.run.retriedBy).toEqual([second.id, first.id]);
    expect((await eventsOf(original)).filter((e) => e.action === "run.retried").map((e) => e.metadata["retryRunId"])).toEqual([first.id, second.id]);
  });

  it.each(["queued", "running"] as const)("a %s run is refused with 409 and nothing is created or recorded", async (state) => {
    const client = await apiClient(`retry-${state}`);
    const svc = runService();
    const original = state === "queued" ? await createQueued(svc, client.workspaceId) : await createRunning(svc, client.workspaceId);
    const before = await snapshot(original);
    const problem = await expectProblem(await retry(original, retryInit(client.token)), 409);
    expect(problem).toMatchObject({ type: "https://oplife.dev/problems/run-not-terminal", runId: original, runStatus: state, status: 409 });
    expect(problem.detail).toContain(state);
    expect(await snapshot(original)).toEqual(before);
    expect(await runCount(client.workspaceId)).toBe(1);
    // Leave nothing running for its tracker's alarm (no tracker holds these service-made runs).
    await setRow(original, "status = 'completed', outcome = 'failed', deadline_at = NULL, completed_at = ?", Date.now());
  });

  it("another workspace's run is a 404, an unknown one too, and neither creates anything", async () => {
    const owner = await apiClient("retry-owner");
    const stranger = await apiClient("retry-stranger");
    const original = await createExecutionFailure(runService(), owner.workspaceId);
    const before = await snapshot(original);
    const problem = await expectProblem(await retry(original, retryInit(stranger.token)), 404);
    expect(problem.detail).toBe("No such run.");
    await expectProblem(await retry("run_01JZZZZZZZZZZZZZZZZZZZZZZZ", retryInit(stranger.token)), 404);
    expect(await snapshot(original)).toEqual(before);
    expect(await runCount(owner.workspaceId)).toBe(1);
    expect(await runCount(stranger.workspaceId)).toBe(0);
  });

  it("needs a token (401), and GET on the action is a 405 naming POST", async () => {
    const client = await apiClient("retry-auth");
    const original = await createExecutionFailure(runService(), client.workspaceId);
    const unauthorized = await retry(original, retryInit(undefined));
    await expectProblem(unauthorized, 401);
    const wrongMethod = await call(`/api/v1/runs/${original}/retry`, { token: client.token });
    await expectProblem(wrongMethod, 405);
    expect(wrongMethod.headers.get("allow")).toBe("POST");
    expect(await runCount(client.workspaceId)).toBe(1);
  });

  it("Idempotency-Key: the same key answers 200 with the same run and one run.retried; on another run it is a 409", async () => {
    const client = await apiClient("retry-key");
    const svc = runService();
    const original = await createExecutionFailure(svc, client.workspaceId);
    const other = await createExecutionFailure(svc, client.workspaceId);
    const first = await retry(original, retryInit(client.token, { "idempotency-key": "retry-once" }));
    expect(first.status).toBe(202);
    const { run } = await bodyOf(first, runEnvelope);
    const again = await retry(original, retryInit(client.token, { "idempotency-key": "retry-once" }));
    expect(again.status).toBe(200);
    expect((await bodyOf(again, runEnvelope)).run.id).toBe(run.id);
    await onlyEvent(original, "run.retried");
    await onlyEvent(run.id, "run.queued");

    const conflict = await expectProblem(await retry(other, retryInit(client.token, { "idempotency-key": "retry-once" })), 409);
    expect(conflict).toMatchObject({ type: "https://oplife.dev/problems/idempotency-key-reused", runId: run.id });
    expect((await eventsOf(other)).some((e) => e.action === "run.retried")).toBe(false);
    expect(await runCount(client.workspaceId)).toBe(3);

    await expectProblem(await retry(original, retryInit(client.token, { "idempotency-key": "bad key with spaces" })), 400);
  });

  it("the tracker unreachable: 503 naming the new run; a replay with the same key hands it over (200, same run)", async () => {
    const client = await apiClient("retry-503");
    vi.spyOn(console, "error").mockImplementation(() => {});
    const original = await createExecutionFailure(runService(), client.workspaceId);
    const init = () => retryInit(client.token, { "idempotency-key": "heal-retry" });
    const res = await callWith({ RUN_TRACKER: unreachableTrackers() }, `/api/v1/runs/${original}/retry`, init());
    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe("https://oplife.dev/problems/not-scheduled");
    expect(res.headers.get("retry-after")).toBe("5");
    const newId = String(problem["runId"]);
    expect((await storedRow(newId)).retry_of).toBe(original);
    expect(await trackerFor(env, newId).status()).toEqual({ known: false });

    const replay = await callWith({}, `/api/v1/runs/${original}/retry`, init());
    expect(replay.status).toBe(200);
    expect((await bodyOf(replay, runEnvelope)).run.id).toBe(newId);
    expect(await trackerState(newId)).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1 } });
  });

  it("the input is checked against the type as registered now: an input it no longer takes, or a removed type, is a 422", async () => {
    const client = await apiClient("retry-422");
    const svc = runService();
    const badInput = await createExecutionFailure(svc, client.workspaceId);
    await setRow(badInput, "input = ?", JSON.stringify({ steps: 0, stepMs: 0 }));
    const invalid = await expectProblem(await retry(badInput, retryInit(client.token)), 422);
    expect(invalid.errors?.map((e) => e.path)).toEqual(["input.steps"]);

    const goneType = await createExecutionFailure(svc, client.workspaceId);
    await setRow(goneType, "type = 'removed.type'");
    const unknown = await expectProblem(await retry(goneType, retryInit(client.token)), 422);
    expect(unknown.detail).toBe('Unknown operation type "removed.type".');
    expect(await runCount(client.workspaceId)).toBe(2);
  });

  it("a body is optional; one with fields is a 422, malformed JSON a 400, a non-JSON type a 415", async () => {
    const client = await apiClient("retry-body");
    const original = await createExecutionFailure(runService(), client.workspaceId);
    const json = { "content-type": "application/json" };
    const extra = await expectProblem(await retry(original, retryInit(client.token, json, '{"input":{"steps":9}}')), 422);
    expect(extra.errors?.[0]?.message).toMatch(/unrecognized key/i);
    await expectProblem(await retry(original, retryInit(client.token, json, "{")), 400);
    await expectProblem(await retry(original, retryInit(client.token, { "content-type": "text/plain" }, "{}")), 415);
    expect(await runCount(client.workspaceId)).toBe(1);
    expect((await retry(original, retryInit(client.token, json, "{}"))).status).toBe(202);
  });
});
