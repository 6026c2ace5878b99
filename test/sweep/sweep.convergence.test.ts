/**
 * Every accepted run converges to one terminal state, whatever broke:
 * a message acked by an attempt that never finalised, a message that never
 * arrived (and a tracker that never heard of the run), a type removed by a
 * deploy. Each path ends in exactly one `run.reconciled` and a lifecycle
 * reason the admin shows as "Failed · reconciled".
 */
import { beforeEach, describe, expect, it } from "vitest";
import { FALLBACK_POLICY, getOperation, policyFor } from "../../src/operations";
import { makeWorkspace } from "../support/fixtures";
import { ageTracker, createRun, runAlarm, tracker, trackerState } from "../support/execution";
import {
  actionsOf,
  backdate,
  createQueued,
  createRunning,
  DEMO_POLICY as P,
  diagnosticsOf,
  displayOf,
  drainOverdue,
  getRun,
  GRACE_MS as GRACE,
  makeOverdue,
  onlyEvent,
  storedRow,
  sweep,
  unableTracker,
} from "../support/sweep";

beforeEach(drainOverdue);

describe("a queue failure that never reached normal finalization", () => {
  // The consumer claimed attempt 1 and acked its message, then died: no
  // result, no failure, and no redelivery will ever come.
  async function claimedThenNothing(name: string) {
    const ws = await makeWorkspace(name);
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    expect(await storedRow(run.id)).toMatchObject({ status: "running", attempt: 1 });
    return { ws, run };
  }

  it("converges through the tracker: heartbeat lost (attempts left) → awaits redelivery → stale_queued", async () => {
    const { run } = await claimedThenNothing("conv-tracker");

    await ageTracker(run.id, P.heartbeatTimeoutMs + 1_000);
    await runAlarm(run.id);
    expect(await storedRow(run.id)).toMatchObject({ status: "queued", attempt: 1, reason_code: null });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_lost"]);

    // Dispatch 2 is never claimed (nothing consumes it): re-sent twice, then the queued deadline fires.
    for (let i = 0; i < 3; i++) {
      await ageTracker(run.id, P.staleQueuedAfterMs / 3 + 1);
      await runAlarm(run.id);
    }
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reason_code: "lifecycle.stale_queued",
      reconciled_by: "tracker_alarm",
    });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.redispatched",
      "run.redispatched",
      "run.reconciled",
    ]);
    expect(displayOf(await getRun(run.id))).toMatchObject({ kind: "failed_reconciled", detector: "tracker_alarm" });
  });

  it("converges through the sweep when the tracker's alarm never ran: the tracker is asked, is itself overdue, and the sweep resolves it", async () => {
    const { run } = await claimedThenNothing("conv-sweep");
    // The tracker's own deadline passed (its alarm kept failing), and D1's too.
    await ageTracker(run.id, P.staleRunningAfterMs + GRACE + 5_000);
    await makeOverdue(run.id, 5_000);

    const report = await sweep();
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_running": 1 }, refreshed: 0, trackerUnavailable: 0, lostRace: 0 });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "completed", outcome: "failed", attempt: 1, reason_code: "lifecycle.stale_running", reconciled_by: "sweep" });
    expect(diagnosticsOf(row).evidence).toMatchObject({ tracker: "overdue by its own clock (heartbeat_lost)", attempt: 1, maxAttempts: P.maxAttempts });
    await onlyEvent(run.id, "run.reconciled");

    // The late alarm finds the run terminal: it follows D1 and writes nothing.
    await runAlarm(run.id);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.reconciled"]);
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 1 });
    expect(await storedRow(run.id)).toEqual(row);
  });
});

describe("a queued run that was never claimed and whose tracker holds no state", () => {
  it("is adopted by the sweep: handed to its tracker, which dispatches it and moves D1's deadline; no verdict", async () => {
    const ws = await makeWorkspace("conv-queued");
    const run = await createQueued(ws);
    const aged = await makeOverdue(run.id, 1_000);
    expect(aged.deadline_at).toBe(aged.created_at + P.staleQueuedAfterMs);
    expect(displayOf(await getRun(run.id))).toMatchObject({ kind: "queued_overdue", live: false });

    const report = await sweep();
    expect(report).toMatchObject({ examined: 1, adopted: 1, reconciled: {}, trackerUnavailable: 0, lostRace: 0, failed: 0 });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "queued", attempt: 0, reason_code: null, reconciled_by: null });
    const held = await trackerState(run.id);
    expect(held).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1, claimed: false } });
    expect(row.deadline_at).toBe(held!.dispatch.dueAt + P.staleQueuedAfterMs);
    expect(await actionsOf(run.id)).toEqual(["run.queued"]);
    // A second sweep finds nothing overdue.
    expect((await sweep()).examined).toBe(0);
  });

  it("when even its tracker cannot be reached, the sweep resolves it lifecycle.stale_queued with that evidence", async () => {
    const ws = await makeWorkspace("conv-queued");
    const run = await createQueued(ws);
    const aged = await makeOverdue(run.id, 1_000);

    const report = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_queued": 1 }, trackerUnavailable: 1, lostRace: 0, failed: 0 });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "completed", outcome: "failed", attempt: 0, reason_code: "lifecycle.stale_queued", reconciled_by: "sweep", started_at: null });
    expect(diagnosticsOf(row).evidence).toMatchObject({ tracker: "unavailable: injected: tracker unreachable", attempt: 0, deadlineAt: aged.deadline_at });
    const event = await onlyEvent(run.id, "run.reconciled");
    expect(event).toMatchObject({ actor: "system:sweep", metadata: { from: "queued", to: "completed", reason: "lifecycle.stale_queued" } });
    expect(displayOf(await getRun(run.id))).toMatchObject({ kind: "failed_reconciled", detector: "sweep" });
  });
});

describe("a run whose type was removed by a deploy", () => {
  const REMOVED = "removed.type";

  it("uses the fallback policy (not the registered demo one) for its deadlines", () => {
    expect(getOperation(REMOVED)).toBeUndefined();
    expect(policyFor(REMOVED)).toBe(FALLBACK_POLICY);
    expect(FALLBACK_POLICY.staleQueuedAfterMs).toBeGreaterThan(P.staleQueuedAfterMs);
  });

  it("converges while queued: left alone before the fallback's threshold, stale_queued after it", async () => {
    const ws = await makeWorkspace("conv-removed-q");
    const run = await createQueued(ws, { type: REMOVED });
    expect(run.deadlineAt).toBe(run.createdAt + FALLBACK_POLICY.staleQueuedAfterMs);
    expect(run.maxAttempts).toBe(FALLBACK_POLICY.maxAttempts);

    // Older than demo.work's threshold but not the fallback's: not yet the sweep's.
    const now = Date.now();
    await backdate(run.id, P.staleQueuedAfterMs + GRACE + 60_000);
    expect((await sweep()).examined).toBe(0);
    expect(await storedRow(run.id)).toMatchObject({ status: "queued" });

    await makeOverdue(run.id, 1_000, now);
    const report = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_queued": 1 } });
    expect(await storedRow(run.id)).toMatchObject({ status: "completed", outcome: "failed", reason_code: "lifecycle.stale_queued", reconciled_by: "sweep" });
    expect(diagnosticsOf(await storedRow(run.id)).thresholds).toMatchObject({ staleQueuedAfterMs: FALLBACK_POLICY.staleQueuedAfterMs });
    await onlyEvent(run.id, "run.reconciled");
    expect(displayOf(await getRun(run.id))).toMatchObject({ kind: "failed_reconciled", live: false });
  });

  it("converges while running: shown stale at once (no policy vouches for it), stale_running via the sweep", async () => {
    const ws = await makeWorkspace("conv-removed-r");
    const run = await createRunning(ws, { type: REMOVED });
    expect(run.deadlineAt).toBe(run.lastHeartbeatAt! + FALLBACK_POLICY.staleRunningAfterMs);
    expect(displayOf(run)).toMatchObject({ kind: "running_stale", live: false });

    await makeOverdue(run.id, 1_000);
    const report = await sweep();
    expect(report).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_running": 1 } });
    expect(await storedRow(run.id)).toMatchObject({ status: "completed", outcome: "failed", attempt: 1, reason_code: "lifecycle.stale_running", reconciled_by: "sweep" });
    await onlyEvent(run.id, "run.reconciled");
    expect(displayOf(await getRun(run.id))).toMatchObject({ kind: "failed_reconciled", live: false });
  });
});
