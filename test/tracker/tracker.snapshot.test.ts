/**
 * The tracker's snapshot of its run (src/tracker/run-tracker.ts): the row D1
 * last returned to it — the acceptance's insert, then its claim's — so its
 * claim and its completion each make one D1 round trip, not a read and a write.
 * Memory only: a tracker reset loses it and the next transition reads, as
 * before. A write it did not see (here, a flush made straight through the run
 * service) costs its completion a round, never the data. D1's round trips are
 * counted on the tracker's own binding (meteredDb).
 */
import { evictDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { meteredDb } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { createRun, getRun, patchTrackerEnv, service, tracker, actionsOf } from "../support/execution";

/** The tracker's D1 binding, counted from here on (until the object is evicted). */
async function meterTracker(runId: string) {
  const m = meteredDb(env.DB);
  await patchTrackerEnv(runId, (e) => ({ ...e, DB: m.db }));
  return async <T>(fn: () => Promise<T>): Promise<{ value: T; roundTrips: number }> => {
    const before = m.cost.roundTrips;
    const value = await fn();
    return { value, roundTrips: m.cost.roundTrips - before };
  };
}

/** The tracker claims dispatch 1 and gets its success report, each call's D1 round trips counted. */
async function claimThenSucceed(runId: string) {
  const counted = await meterTracker(runId);
  const claim = await counted(async () => await tracker(runId).claim({ runId, dispatch: 1 }));
  const report = await counted(async () => await tracker(runId).report({ kind: "result", attempt: 1, outcome: "succeeded" }));
  return { claim, report };
}

describe("the tracker decides on the row D1 last returned to it", () => {
  it("a run accepted and carried to succeeded: one round trip for the claim, one for the completion", async () => {
    const ws = await makeWorkspace("snapshot");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0 });
    const { claim, report } = await claimThenSucceed(run.id);

    expect(claim.value).toMatchObject({ ok: true, run: { attempt: 1 } });
    expect(claim.roundTrips).toBe(1);
    expect(report.value).toEqual({ ok: true, applied: true, status: "completed" });
    expect(report.roundTrips).toBe(1);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("after a reset the claim reads the row first, and the claim's own row serves the completion", async () => {
    const ws = await makeWorkspace("snapshot-reset");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0 });
    await evictDurableObject(tracker(run.id));
    const { claim, report } = await claimThenSucceed(run.id);

    expect(claim.value).toMatchObject({ ok: true, run: { attempt: 1 } });
    expect(claim.roundTrips).toBe(2);
    expect(report.value).toEqual({ ok: true, applied: true, status: "completed" });
    expect(report.roundTrips).toBe(1);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("a flush it did not see costs the completion a round: the flushed progress is kept", async () => {
    const ws = await makeWorkspace("snapshot-flush");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const progress = { total: 4, processed: 3, succeeded: 3, failed: 0 };
    const flushedAt = Date.now() + DEFAULT_SETTINGS.heartbeatFlushIntervalMs;
    expect(await service().heartbeat({ runId: run.id, type: run.type, attempt: 1, progress, at: flushedAt })).toEqual({ ok: true, flushed: true });
    const counted = await meterTracker(run.id);

    // No progress in the report: the run keeps the last known one (contract section 1).
    const report = await counted(async () => await tracker(run.id).report({ kind: "result", attempt: 1, outcome: "succeeded" }));
    expect(report.value).toEqual({ ok: true, applied: true, status: "completed" });
    expect(report.roundTrips).toBe(3);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", progress, lastHeartbeatAt: flushedAt });
  });
});
