/**
 * `GET /api/v1/runs/{id}/events`: a run's history, oldest first, scoped by
 * workspace (another workspace's run is a 404), secrets masked.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { OPERATIONS, currentMessage, deliver, expectAcked } from "../support/execution";
import { DEMO_BODY, apiClient, bodyOf, call, expectProblem, postInit, runEnvelope } from "../support/api";

const eventsEnvelope = z
  .object({
    events: z.array(
      z.object({ id: z.string().regex(/^evt_/), action: z.string(), actor: z.string(), createdAt: z.iso.datetime(), metadata: z.unknown() }).strict(),
    ),
  })
  .strict();

describe("GET /api/v1/runs/{id}/events", () => {
  it("lists the run's transitions in order, with their actors", async () => {
    const client = await apiClient("events");
    const created = await bodyOf(await call("/api/v1/runs", postInit(client.token, { type: "demo.work", input: { steps: 1, stepMs: 0, throwAtStep: 1, throwTimes: 1 } })), runEnvelope);
    const runId = created.run.id;
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(runId), attempts: 1 }]));
    // Between attempts the run says it is retrying: which attempt ended, how, and when the next is due.
    const waiting = (await bodyOf(await call(`/api/v1/runs/${runId}`, { token: client.token }), runEnvelope)).run;
    expect(waiting).toMatchObject({ displayState: "retrying", reasonCode: null, retry: { afterAttempt: 1, ended: "handler.error" } });
    expect(Date.parse(waiting.retry!.nextAttemptAt)).toBeGreaterThan(Date.parse(waiting.createdAt));
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(runId), attempts: 1 }]));
    expect((await bodyOf(await call(`/api/v1/runs/${runId}`, { token: client.token }), runEnvelope)).run.retry).toBeNull();

    const res = await call(`/api/v1/runs/${runId}/events`, { token: client.token });
    expect(res.status).toBe(200);
    const { events } = await bodyOf(res, eventsEnvelope);
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ["run.queued", expect.stringMatching(/^api-token:/)],
      ["run.attempt_started", "system:consumer"],
      ["run.attempt_failed", "system:consumer"],
      ["run.attempt_started", "system:consumer"],
      ["run.completed", "system:consumer"],
    ]);
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort());
  });

  it("another workspace's run, or no run, is a 404; no token is a 401", async () => {
    const a = await apiClient("events-a");
    const b = await apiClient("events-b");
    const { run } = await bodyOf(await call("/api/v1/runs", postInit(a.token, DEMO_BODY)), runEnvelope);
    await expectProblem(await call(`/api/v1/runs/${run.id}/events`, { token: b.token }), 404);
    await expectProblem(await call(`/api/v1/runs/run_01J0000000000000000000000Q/events`, { token: a.token }), 404);
    await expectProblem(await call(`/api/v1/runs/${run.id}/events`), 401);
  });
});
