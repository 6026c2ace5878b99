/**
 * The sweep never touches live work: a queued run before its deadline, a
 * running run with a fresh heartbeat, a long-running run whose fresher
 * heartbeat only its tracker knows, a run overdue by less than the grace.
 * Each test sweeps with an overdue control run beside the fresh ones, so a
 * sweep that did nothing at all could not pass.
 */
import { beforeEach, describe, expect, it } from "vitest";
import { initialTrackerState } from "../../src/tracker";
import { makeWorkspace, manualClock } from "../support/fixtures";
import { createRun, tracker, trackerState } from "../support/execution";
import {
  actionsOf,
  answeringTracker,
  backdate,
  capturingErrors,
  createQueued,
  createRunning,
  DEMO_POLICY as P,
  displayOf,
  drainOverdue,
  getRun,
  GRACE_MS,
  makeOverdue,
  service,
  setDeadline,
  storedRow,
  sweep,
  unableTracker,
} from "../support/sweep";

beforeEach(drainOverdue);

/** An overdue run the sweep must reconcile (running, no tracker holds it): proof that the sweep did run. */
async function overdueControl(ws: string): Promise<string> {
  const run = await createRunning(ws);
  await makeOverdue(run.id, 10_000);
  return run.id;
}

describe("fresh runs are never touched", () => {
  it("queued before its deadline, and running with a fresh heartbeat, stay exactly as they were", async () => {
    const ws = await makeWorkspace("fresh");
    const queued = await createQueued(ws);
    const running = await createRunning(ws);
    expect((await service().heartbeat({ runId: running.id, type: running.type, attempt: 1, force: true })).ok).toBe(true);
    const control = await overdueControl(ws);
    const before = { queued: await storedRow(queued.id), running: await storedRow(running.id) };

    const report = await sweep();
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_running": 1 }, refreshed: 0 });
    expect(await storedRow(control)).toMatchObject({ status: "completed", reconciled_by: "sweep" });

    expect(await storedRow(queued.id)).toEqual(before.queued);
    expect(await storedRow(running.id)).toEqual(before.running);
    expect(await actionsOf(queued.id)).toEqual(["run.queued"]);
    expect(await actionsOf(running.id)).toEqual(["run.queued", "run.attempt_started"]);
    expect(displayOf(await getRun(queued.id))).toMatchObject({ kind: "queued", live: true });
    expect(displayOf(await getRun(running.id))).toMatchObject({ kind: "running", live: true });
  });

  it("long-running but heartbeating: D1's flushed deadline is stale, the tracker's heartbeat is fresh → refreshed, not reconciled", async () => {
    const ws = await makeWorkspace("fresh-long");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    const t = tracker(run.id);
    expect(await t.claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const progress = { total: 3, processed: 2, succeeded: 2, failed: 0 };
    expect(await t.heartbeat({ attempt: 1, progress })).toEqual({ ok: true });
    const beat = (await trackerState(run.id))!;

    // Started 10 minutes ago; the last heartbeat that reached D1 is that old too.
    const stale = await backdate(run.id, 10 * 60_000);
    expect(stale.deadline_at!).toBeLessThan(Date.now() - GRACE_MS);
    const control = await overdueControl(ws);

    const report = await sweep();
    expect(report).toMatchObject({ examined: 2, vouched: 1, refreshed: 1, reconciled: { "lifecycle.stale_running": 1 }, lostRace: 0, trackerUnavailable: 0 });
    expect(await storedRow(control)).toMatchObject({ status: "completed" });

    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "running",
      outcome: "pending",
      attempt: 1,
      reason_code: null,
      reconciled_by: null,
      last_heartbeat_at: beat.lastHeartbeatAt,
      deadline_at: beat.lastHeartbeatAt! + P.staleRunningAfterMs,
      started_at: stale.started_at,
    });
    expect(row.deadline_at!).toBeGreaterThan(Date.now());
    expect(JSON.parse(row.progress)).toEqual(progress);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started"]);
    expect(await trackerState(run.id)).toMatchObject({ status: "running", lastFlushedAt: beat.lastHeartbeatAt });

    // A second sweep finds nothing of it overdue.
    expect((await sweep()).examined).toBe(0);

    // Finish the attempt so its alarm has nothing to find later in this file.
    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded", progress })).toEqual({ ok: true, applied: true, status: "completed" });
  });

  it("runs overdue by less than the grace are left to their tracker; one millisecond past it they are the sweep's", async () => {
    const ws = await makeWorkspace("fresh-grace");
    const clock = manualClock(Date.now());
    const now = clock.now();
    const inside = await createQueued(ws);
    const atEdge = await createRunning(ws);
    const past = await createQueued(ws);
    await setDeadline(inside.id, now - GRACE_MS + 5_000); // overdue by 10 s of a 15 s grace
    await setDeadline(atEdge.id, now - GRACE_MS); // exactly the grace: still inside
    await setDeadline(past.id, now - GRACE_MS - 1);
    const before = { inside: await storedRow(inside.id), atEdge: await storedRow(atEdge.id) };

    const unable = unableTracker("rejects");
    const report = await sweep({ clock: clock.now, tracker: unable.tracker });
    expect(unable.asked).toEqual([past.id]);
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_queued": 1 } });
    expect(await storedRow(past.id)).toMatchObject({ status: "completed", reconciled_by: "sweep" });
    expect(await storedRow(inside.id)).toEqual(before.inside);
    expect(await storedRow(atEdge.id)).toEqual(before.atEdge);
    expect(await actionsOf(inside.id)).toEqual(["run.queued"]);
    expect(await actionsOf(atEdge.id)).toEqual(["run.queued", "run.attempt_started"]);

    // Give them real deadlines again so later sweeps in this file leave them be.
    await setDeadline(inside.id, now + P.staleQueuedAfterMs);
    await setDeadline(atEdge.id, now + P.staleRunningAfterMs);
  });

  it("a tracker that vouches for the run but never answers refresh() does not stall the sweep, and the run is left alone", async () => {
    const ws = await makeWorkspace("fresh-hang");
    const run = await createRunning(ws);
    const aged = await makeOverdue(run.id, 1_000);
    const control = await overdueControl(ws);
    const now = Date.now();
    const vouching = answeringTracker(
      (runId) =>
        runId === run.id
          ? {
              known: true,
              state: {
                ...initialTrackerState({ runId, workspaceId: ws, type: run.type, maxAttempts: run.maxAttempts, attempt: 0, dueAt: aged.created_at }),
                status: "running",
                attempt: 1,
                dispatch: { n: 1, dueAt: aged.created_at, claimed: true, sends: 1, sentAt: aged.created_at },
                lastHeartbeatAt: now,
                lastFlushedAt: aged.last_heartbeat_at,
              },
              action: { kind: "wait", until: now + P.heartbeatTimeoutMs },
              vouches: true,
            }
          : { known: false },
      "hangs",
    );

    const { value: report, json } = await capturingErrors(() => sweep({ tracker: vouching, trackerTimeoutMs: 50 }));
    expect(json).toEqual([]);
    expect(report).toMatchObject({ examined: 2, reconciled: { "lifecycle.stale_running": 1 }, vouched: 1, refreshed: 0, failed: 0 });
    expect(await storedRow(control)).toMatchObject({ status: "completed" });
    // The tracker said the attempt is alive: the sweep must not kill it on a timeout.
    expect(await storedRow(run.id)).toMatchObject({ status: "running", reconciled_by: null });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started"]);
    await setDeadline(run.id, Date.now() + P.staleRunningAfterMs);
  });
});
