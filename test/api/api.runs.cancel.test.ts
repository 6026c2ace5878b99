/**
 * `POST /api/v1/runs/{id}/cancel` (contract section 7): 200 for a queued run
 * (cancelled at once), 202 for a running one (Cancelling, and again 202 with no
 * second event), 409 for a terminal run (nothing changes), 404 across
 * workspaces, and a clear problem for every bad body.
 */
import { describe, expect, it } from "vitest";
import { eventsOf } from "../support/runs";
import { actionsOf, getRun, tracker } from "../support/execution";
import { DEMO_BODY, apiClient, bodyOf, call, expectProblem, postInit, runEnvelope, type ApiClient } from "../support/api";

async function createdRun(client: ApiClient): Promise<string> {
  const res = await call("/api/v1/runs", postInit(client.token, DEMO_BODY));
  return (await bodyOf(res, runEnvelope)).run.id;
}

async function runningRun(client: ApiClient): Promise<string> {
  const id = await createdRun(client);
  expect(await tracker(id).claim({ runId: id, dispatch: 1 })).toMatchObject({ ok: true });
  return id;
}

const cancelPath = (id: string) => `/api/v1/runs/${id}/cancel`;

describe("POST /api/v1/runs/{id}/cancel", () => {
  it("a queued run: 200, cancelled at once, by the token, with both audit events", async () => {
    const client = await apiClient("cancel-api-queued");
    const id = await createdRun(client);
    const res = await call(cancelPath(id), { method: "POST", token: client.token });
    expect(res.status).toBe(200);
    const { run } = await bodyOf(res, runEnvelope);
    expect(run).toMatchObject({
      id,
      status: "completed",
      outcome: "cancelled",
      displayState: "cancelled",
      reasonCode: "operator.cancelled",
      reasonFamily: "operator",
      cancelRequestedBy: expect.stringMatching(/^api-token:/),
    });
    expect(run.displayLabel).toMatch(/^Cancelled by API token /);
    expect(run.cancelRequestedAt).not.toBeNull();
    const events = await eventsOf(id);
    expect(events.map((e) => e.action)).toEqual(["run.queued", "run.cancel_requested", "run.cancelled"]);
    expect(events.slice(1).every((e) => e.actor === run.cancelRequestedBy)).toBe(true);
  });

  it("a running run: 202 Cancelling with the reason kept; the same cancel again is 202 with no second event", async () => {
    const client = await apiClient("cancel-api-running");
    const id = await runningRun(client);
    const res = await call(cancelPath(id), postInit(client.token, { reason: "  customer asked  " }));
    expect(res.status).toBe(202);
    expect((await bodyOf(res, runEnvelope)).run).toMatchObject({ status: "running", displayState: "cancelling", displayLabel: "Cancelling" });
    const requested = (await eventsOf(id)).find((e) => e.action === "run.cancel_requested");
    expect(requested?.metadata).toMatchObject({ reason: "customer asked" });

    const again = await call(cancelPath(id), postInit(client.token, {}));
    expect(again.status).toBe(202);
    expect((await bodyOf(again, runEnvelope)).run.displayState).toBe("cancelling");
    expect(await actionsOf(id)).toEqual(["run.queued", "run.attempt_started", "run.cancel_requested"]);

    // The attempt stops: the run ends cancelled (no run is left running after the test).
    await tracker(id).report({ kind: "stopped", attempt: 1 });
    expect((await bodyOf(await call(`/api/v1/runs/${id}`, { token: client.token }), runEnvelope)).run).toMatchObject({
      outcome: "cancelled",
      displayState: "cancelled",
      failureMessage: expect.stringContaining("customer asked"),
    });
  });

  it("a terminal run: 409 problem, and nothing changes", async () => {
    const client = await apiClient("cancel-api-terminal");
    const id = await runningRun(client);
    await tracker(id).report({ kind: "result", attempt: 1, outcome: "succeeded" });
    const before = { run: await getRun(id), events: await actionsOf(id) };
    const problem = await expectProblem(await call(cancelPath(id), { method: "POST", token: client.token }), 409);
    expect(problem).toMatchObject({ type: "https://oplife.dev/problems/run-terminal", runId: id, runStatus: "completed", outcome: "succeeded" });
    expect(await getRun(id)).toEqual(before.run);
    expect(await actionsOf(id)).toEqual(before.events);
    // A cancelled run is terminal too.
    const queued = await createdRun(client);
    expect((await call(cancelPath(queued), { method: "POST", token: client.token })).status).toBe(200);
    await expectProblem(await call(cancelPath(queued), { method: "POST", token: client.token }), 409);
    expect((await actionsOf(queued)).filter((a) => a === "run.cancelled")).toHaveLength(1);
  });

  it("another workspace's run or no run is a 404 and cancels nothing; no token is a 401", async () => {
    const a = await apiClient("cancel-api-a");
    const b = await apiClient("cancel-api-b");
    const id = await createdRun(a);
    await expectProblem(await call(cancelPath(id), { method: "POST", token: b.token }), 404);
    await expectProblem(await call(cancelPath("run_01J0000000000000000000000Q"), { method: "POST", token: a.token }), 404);
    await expectProblem(await call(cancelPath(id), { method: "POST" }), 401);
    expect(await getRun(id)).toMatchObject({ status: "queued", cancelRequestedAt: null });
    expect(await actionsOf(id)).toEqual(["run.queued"]);
  });

  it("a bad body is refused with a problem naming it, and cancels nothing", async () => {
    const client = await apiClient("cancel-api-body");
    const id = await createdRun(client);
    await expectProblem(await call(cancelPath(id), postInit(client.token, "{not json")), 400);
    const unknown = await expectProblem(await call(cancelPath(id), postInit(client.token, { reason: "x", force: true })), 422);
    expect(unknown.errors?.length).toBeGreaterThan(0);
    const long = await expectProblem(await call(cancelPath(id), postInit(client.token, { reason: "x".repeat(501) })), 422);
    expect(long.errors?.map((e) => e.path)).toEqual(["reason"]);
    await expectProblem(await call(cancelPath(id), postInit(client.token, { reason: 5 })), 422);
    await expectProblem(await call(cancelPath(id), postInit(client.token, "reason=x", { "content-type": "text/plain" })), 415);
    await expectProblem(await call(cancelPath(id), postInit(client.token, "x".repeat(70 * 1024))), 413);
    expect(await actionsOf(id)).toEqual(["run.queued"]);
  });
});
