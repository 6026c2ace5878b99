/**
 * Accepting a run (contract v2 section 4): the API answers 202 only once the
 * run's tracker holds it — the tracker is the outbox that sends dispatch 1 and
 * retries it. A run its tracker could not take is answered 503 (never a 202 for
 * a run nobody will dispatch), and a replay with the same Idempotency-Key hands
 * it over again: the replay heals it (issue 9, input 5). A queue that refuses
 * the send is the tracker's to retry (test/tracker/tracker.stale-queued.test.ts).
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { policyFor } from "../../src/operations";
import { trackerFor } from "../../src/tracker";
import { trackerState } from "../support/execution";
import { DEMO_BODY, apiClient, bodyOf, callWith, expectProblem, postInit, runEnvelope } from "../support/api";
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

describe("POST /api/v1/runs and the run's tracker", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("202 once the tracker holds the run: dispatch 1 stored and sent, nothing logged as failed", async () => {
    const client = await apiClient("tracked");
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await callWith({}, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 0, dispatch: { n: 1, sends: 1, claimed: false } });
    expect(loggedEvents(errors).map((l) => l["event"])).toEqual([]);
  });

  it("the tracker unreachable: 503 naming the run (not a 202), and a replay with the same Idempotency-Key hands it over", async () => {
    const client = await apiClient("untracked");
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const init = () => postInit(client.token, DEMO_BODY, { "idempotency-key": "heal-me" });

    const res = await callWith({ RUN_TRACKER: unreachableTrackers() }, "/api/v1/runs", init());
    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe("https://oplife.dev/problems/not-scheduled");
    expect(res.headers.get("retry-after")).toBe("5");
    const runId = String(problem["runId"]);
    expect(loggedEvents(errors).map((l) => l["event"])).toContain("producer.track_failed");
    // Recorded, with its D1 deadline (the sweep adopts it if nobody replays), but no tracker holds it.
    const row = await storedRow(runId);
    expect(row).toMatchObject({ status: "queued", attempt: 0 });
    expect(row.deadline_at).toBe(row.created_at + P.staleQueuedAfterMs);
    expect(await trackerFor(env, runId).status()).toEqual({ known: false });

    const replay = await callWith({}, "/api/v1/runs", init());
    expect(replay.status).toBe(200);
    expect((await bodyOf(replay, runEnvelope)).run.id).toBe(runId);
    expect(await trackerState(runId)).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1 } });
    expect((await eventsOf(runId)).map((e) => e.action)).toEqual(["run.queued"]);
  });
});
