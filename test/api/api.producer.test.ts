/**
 * Accepting a run when the queue is down: the API still answers 202, because
 * the run is recorded in D1 and its tracker's queued deadline is armed, so it
 * converges (contract section 4: `lifecycle.stale_queued` within
 * staleQueuedAfterMs) instead of staying queued forever.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { policyFor } from "../../src/operations";
import { operationMessage } from "../../src/queue/messages";
import { trackerFor } from "../../src/tracker";
import { DEMO_BODY, apiClient, bodyOf, callWith, failingQueue, postInit, recordingQueue, runEnvelope } from "../support/api";
import { eventsOf, storedRow } from "../support/runs";

const P = policyFor("demo.work");

/** A Durable Object namespace whose every stub call fails (the tracker unreachable). */
function unreachableTrackers(): DurableObjectNamespace<import("../../src/tracker").RunTracker> {
  return new Proxy(env.RUN_TRACKER, {
    get(target, prop) {
      if (prop === "getByName" || prop === "get" || prop === "idFromName") {
        return () => {
          throw new Error("injected: Durable Objects unavailable");
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function loggedEvents(spy: { mock: { calls: unknown[][] } }): Array<Record<string, unknown>> {
  return spy.mock.calls.flatMap((c) => {
    try {
      const line: unknown = JSON.parse(String(c[0]));
      return typeof line === "object" && line !== null ? [line as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

describe("POST /api/v1/runs when the queue send fails", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("answers 202, records the run queued, and arms its tracker's queued deadline", async () => {
    const client = await apiClient("queue-down");
    const queue = failingQueue();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});

    const res = await callWith({ OPERATIONS_QUEUE: queue.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(queue.attempts()).toBe(1);
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    expect(res.headers.get("location")).toBe(`/api/v1/runs/${run.id}`);
    expect(run).toMatchObject({ status: "queued", displayState: "queued", attempt: 0 });
    const createdAt = Date.parse(run.createdAt);

    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      workspace_id: client.workspaceId,
      status: "queued",
      outcome: "pending",
      attempt: 0,
      deadline_at: createdAt + P.staleQueuedAfterMs,
    });
    expect((await eventsOf(run.id)).map((e) => e.action)).toEqual(["run.queued"]);

    const tracker = trackerFor(env, run.id);
    const { status, alarm } = await runInDurableObject(tracker, async (instance, state) => ({
      status: await instance.status(),
      alarm: await state.storage.getAlarm(),
    }));
    expect(status).toEqual({
      known: true,
      state: {
        runId: run.id,
        type: "demo.work",
        status: "queued",
        attempt: 0,
        lastHeartbeatAt: null,
        lastFlushedAt: null,
        progress: null,
        queuedSince: createdAt,
        completedAt: null,
      },
      action: { kind: "wait", until: createdAt + P.staleQueuedAfterMs },
    });
    // The one alarm is set at that deadline: the tracker will reconcile it without any message.
    expect(alarm).toBe(createdAt + P.staleQueuedAfterMs);

    // Surfaced, not swallowed: one structured line says which run and what will happen to it.
    const failed = loggedEvents(errors).filter((l) => l["event"] === "producer.send_failed");
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ level: "error", runId: run.id });
    expect(String(failed[0]?.["consequence"])).toContain("lifecycle.stale_queued");
  });

  it("with the tracker unreachable too, still 202: the D1 deadline lets the sweep find the run", async () => {
    const client = await apiClient("all-down");
    const queue = failingQueue();
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});

    const res = await callWith(
      { OPERATIONS_QUEUE: queue.queue, RUN_TRACKER: unreachableTrackers() },
      "/api/v1/runs",
      postInit(client.token, DEMO_BODY),
    );
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "queued", deadline_at: Date.parse(run.createdAt) + P.staleQueuedAfterMs });
    const events = loggedEvents(errors).map((l) => l["event"]);
    expect(events).toContain("producer.track_failed");
    expect(events).toContain("producer.send_failed");
    // The real tracker of this run was never told about it.
    expect(await trackerFor(env, run.id).status()).toEqual({ known: false });
  });

  it("a healthy queue gets the message after the tracker is armed, and nothing is logged as failed", async () => {
    const client = await apiClient("queue-up");
    const q = recordingQueue();
    const trackerKnewAtSend: boolean[] = [];
    const send = q.queue.send.bind(q.queue);
    q.queue.send = async (message, options) => {
      const runId = operationMessage.parse(message).runId;
      trackerKnewAtSend.push((await trackerFor(env, runId).status()).known);
      return send(message, options);
    };
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    expect(q.sent).toEqual([{ v: 1, runId: run.id, workspaceId: client.workspaceId, type: "demo.work" }]);
    expect(trackerKnewAtSend).toEqual([true]);
    expect(await trackerFor(env, run.id).status()).toMatchObject({ known: true, state: { status: "queued", attempt: 0 } });
    expect(loggedEvents(errors).map((l) => l["event"])).toEqual([]);
  });
});
