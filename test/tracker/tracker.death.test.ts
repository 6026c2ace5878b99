/**
 * An attempt that stops heartbeating (contract v2 section 4): the run's
 * tracker alarm declares it lost after heartbeatTimeoutMs — a new dispatch at
 * once while attempts remain, lifecycle.heartbeat_lost when none are left —
 * and a second alarm changes nothing more. Time passes by ageing the tracker's state
 * (see test/support/execution.ts), not by waiting.
 */
import { describe, expect, it } from "vitest";
import { explainReason } from "../../src/lifecycle";
import { makeWorkspace } from "../support/fixtures";
import { onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  createRun,
  currentMessage,
  deliver,
  expectAcked,
  getRun,
  runAlarm,
  spyingEnv,
  tracker,
  trackerState,
  writeTrackerState,
} from "../support/execution";

const SILENT_MS = DEMO_POLICY.heartbeatTimeoutMs + 1_000;

/** What a consumer does before it dies: claim the current dispatch, heartbeat once, then nothing. Returns the attempt. */
async function claimAndDie(runId: string): Promise<number> {
  const dispatch = (await trackerState(runId))!.dispatch.n;
  const claim = await tracker(runId).claim({ runId, dispatch });
  expect(claim).toMatchObject({ ok: true, run: { runId, dispatch } });
  const attempt = claim.ok ? claim.run.attempt : 0;
  expect(await tracker(runId).heartbeat({ attempt, progress: { total: 5, processed: 1, succeeded: 1, failed: 0 } })).toEqual({ ok: true });
  return attempt;
}

/** Spend attempts 1 … n−1 by losing them, so the next claim starts attempt n. */
async function loseAttempts(runId: string, n: number): Promise<void> {
  for (let i = 1; i < n; i++) {
    await claimAndDie(runId);
    await ageTracker(runId, SILENT_MS);
    await runAlarm(runId);
  }
}

describe("an attempt that dies mid-run", () => {
  it("with attempts left: the alarm requeues the run (run.attempt_lost), sends a new dispatch at once, and it runs to success", async () => {
    const ws = await makeWorkspace("death");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 0 });
    expect(await claimAndDie(run.id)).toBe(1);
    const aged = await ageTracker(run.id, SILENT_MS);
    expect(aged.lastHeartbeatAt).not.toBeNull();

    await runAlarm(run.id);

    const lost = await getRun(run.id);
    expect(lost).toMatchObject({ status: "queued", outcome: "pending", attempt: 1, reasonCode: null, reconciledBy: null });
    expect(lost.diagnostics.attempts).toEqual([expect.objectContaining({ attempt: 1, ended: "heartbeat lost" })]);
    // Due at once: stale only if no attempt starts within staleQueuedAfterMs from now.
    expect(lost.deadlineAt).toBe(lost.updatedAt + DEMO_POLICY.staleQueuedAfterMs);
    const event = await onlyEvent(run.id, "run.attempt_lost");
    expect(event).toMatchObject({
      actor: "system:tracker",
      metadata: {
        from: "running",
        to: "queued",
        attempt: 1,
        evidence: {
          lastHeartbeatAt: aged.lastHeartbeatAt,
          deadline: aged.lastHeartbeatAt! + DEMO_POLICY.heartbeatTimeoutMs,
          heartbeatTimeoutMs: DEMO_POLICY.heartbeatTimeoutMs,
        },
      },
    });
    const requeued = await trackerState(run.id);
    expect(requeued).toMatchObject({ status: "queued", attempt: 1, dispatch: { n: 2, sends: 1, claimed: false } });
    // Due at once: when D1 put it back, or (a moment later) when the tracker learnt of it.
    expect(requeued!.dispatch.dueAt).toBeGreaterThanOrEqual(lost.updatedAt);

    // A late copy of the first dispatch starts nothing; the new one runs attempt 2.
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2 }]));
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));

    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "succeeded",
      attempt: 2,
      reasonCode: null,
      reconciledBy: null,
      progress: { total: 3, processed: 3, succeeded: 3, failed: 0 },
    });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.completed",
    ]);
  });

  it("with none left: the alarm fails the run lifecycle.heartbeat_lost (reconciled_by tracker_alarm) with its evidence", async () => {
    const ws = await makeWorkspace("death");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    await loseAttempts(run.id, DEMO_POLICY.maxAttempts);
    expect(await claimAndDie(run.id)).toBe(DEMO_POLICY.maxAttempts);
    const aged = await ageTracker(run.id, SILENT_MS);

    await runAlarm(run.id);

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 3,
      reasonCode: "lifecycle.heartbeat_lost",
      reconciledBy: "tracker_alarm",
      failureMessage: explainReason("lifecycle.heartbeat_lost").whatHappened,
      deadlineAt: null,
    });
    expect(after.diagnostics).toMatchObject({
      detectedBy: "tracker_alarm",
      evidence: {
        lastHeartbeatAt: aged.lastHeartbeatAt,
        deadline: aged.lastHeartbeatAt! + DEMO_POLICY.heartbeatTimeoutMs,
        heartbeatTimeoutMs: DEMO_POLICY.heartbeatTimeoutMs,
      },
      thresholds: { heartbeatTimeoutMs: DEMO_POLICY.heartbeatTimeoutMs, maxAttempts: 3 },
    });
    expect(after.diagnostics.attempts.map((a) => [a.attempt, a.ended])).toEqual([
      [1, "heartbeat lost"],
      [2, "heartbeat lost"],
      [3, "heartbeat lost"],
    ]);
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.reconciled",
    ]);
    expect(await onlyEvent(run.id, "run.reconciled")).toMatchObject({ actor: "system:tracker", metadata: { from: "running", to: "completed", attempt: 3 } });
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 3 });
  });

  it("an alarm run twice changes nothing the second time, even replaying the state it acted on", async () => {
    const ws = await makeWorkspace("death");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    await loseAttempts(run.id, DEMO_POLICY.maxAttempts);
    await claimAndDie(run.id);
    const aged = await ageTracker(run.id, SILENT_MS);
    await runAlarm(run.id);
    const once = await snapshot(run.id);
    expect(once.row).toMatchObject({ status: "completed", reason_code: "lifecycle.heartbeat_lost" });

    // The next alarm is the retention one; running it early finds nothing to do.
    await runAlarm(run.id);
    expect(await snapshot(run.id)).toEqual(once);

    // As if the first alarm's own storage write had been lost: it fires again on
    // the running state it saw, and D1's compare-and-set refuses (terminal).
    await writeTrackerState(run.id, aged);
    await runAlarm(run.id);
    expect(await snapshot(run.id)).toEqual(once);
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 3 });
  });

  it("an alarm while heartbeats are fresh changes nothing and re-arms at the heartbeat's deadline", async () => {
    const ws = await makeWorkspace("death");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    await claimAndDie(run.id);
    // Silent for less than the timeout: still alive.
    const aged = await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs - 2_000);
    const before = await snapshot(run.id);

    await runAlarm(run.id);

    expect(await snapshot(run.id)).toEqual(before);
    expect(await trackerState(run.id)).toMatchObject({ status: "running", attempt: 1, lastHeartbeatAt: aged.lastHeartbeatAt });
    const next = await alarmAt(run.id);
    expect(next).toBe(aged.lastHeartbeatAt! + DEMO_POLICY.heartbeatTimeoutMs);
    expect(next!).toBeGreaterThan(Date.now());

    // Let the attempt finish so the re-armed alarm has nothing to act on later in this file.
    expect(await tracker(run.id).report({ kind: "result", attempt: 1, outcome: "succeeded" })).toEqual({ ok: true, applied: true, status: "completed" });
  });

  // The deadline is generous: a fence that failed would let the 60 s input run on and time the test out.
  it("an attempt declared lost while still alive is fenced at its next heartbeat: aborted, nothing reported, its message acked", { timeout: 30_000 }, async () => {
    const ws = await makeWorkspace("death");
    // 60 s of work: only the fence can end the delivery within the test's deadline.
    const { run, message } = await createRun(ws, { steps: 600, stepMs: 100 });
    let declaredLost: Promise<void> | undefined;
    // Once the attempt runs, its heartbeats "stop reaching" the tracker: the tracker ages past the timeout and its alarm fires.
    const spy = spyingEnv((c) => {
      if (c.method === "claim" && c.answer.ok) {
        declaredLost = ageTracker(run.id, SILENT_MS).then(() => runAlarm(run.id));
      }
    });

    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-alive" }], spy.env);
    await declaredLost;

    expect(spy.calls.filter((c) => c.method === "heartbeat").map((c) => c.answer)).toEqual([{ ok: false, refusal: "fenced" }]);
    expect(spy.calls.some((c) => c.method === "report")).toBe(false);
    // Acked: the tracker already sent a new dispatch for attempt 2.
    expectAcked(first);
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 2, sends: 1 } });

    // Attempt 2 is claimed from the new dispatch; here it reports at once.
    const claim = await tracker(run.id).claim({ runId: run.id, dispatch: 2 });
    expect(claim).toMatchObject({ ok: true, run: { attempt: 2 } });
    await tracker(run.id).report({ kind: "result", attempt: 2, outcome: "succeeded" });
    const after = await getRun(run.id);
    expect(after).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, reasonCode: null, reconciledBy: null });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.completed",
    ]);
  });
});
