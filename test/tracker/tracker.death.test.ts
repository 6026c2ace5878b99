/**
 * An attempt that stops heartbeating (contract section 4.1): the run's
 * tracker alarm declares it lost after heartbeatTimeoutMs — back to the queue
 * while attempts remain, lifecycle.heartbeat_lost when none are left — and a
 * second alarm changes nothing more. Time passes by ageing the tracker's state
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

/** What a consumer does before it dies: claim attempt n, heartbeat once, then nothing. */
async function claimAndDie(runId: string, attempt: number): Promise<void> {
  const claim = await tracker(runId).claim({ runId, attempt });
  expect(claim).toMatchObject({ ok: true, takeover: false, run: { runId, attempt } });
  expect(await tracker(runId).heartbeat({ attempt, progress: { total: 5, processed: 1, succeeded: 1, failed: 0 } })).toEqual({ ok: true });
}

describe("an attempt that dies mid-run", () => {
  it("with attempts left: the alarm requeues the run (run.attempt_lost) and the redelivery runs to success", async () => {
    const ws = await makeWorkspace("death");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 0 });
    await claimAndDie(run.id, 1);
    const aged = await ageTracker(run.id, SILENT_MS);
    expect(aged.lastHeartbeatAt).not.toBeNull();

    await runAlarm(run.id);

    const lost = await getRun(run.id);
    expect(lost).toMatchObject({ status: "queued", outcome: "pending", attempt: 1, reasonCode: null, reconciledBy: null });
    expect(lost.diagnostics.attempts).toEqual([expect.objectContaining({ attempt: 1, ended: "heartbeat lost" })]);
    // Awaiting redelivery: stale only if no attempt starts within staleQueuedAfterMs from now.
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
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 1 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2 }]));

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
    await claimAndDie(run.id, DEMO_POLICY.maxAttempts);
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
    expect(after.diagnostics.attempts).toEqual([expect.objectContaining({ attempt: 3, ended: "heartbeat lost" })]);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.reconciled"]);
    expect(await onlyEvent(run.id, "run.reconciled")).toMatchObject({ actor: "system:tracker", metadata: { from: "running", to: "completed", attempt: 3 } });
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 3 });
  });

  it("an alarm run twice changes nothing the second time, even replaying the state it acted on", async () => {
    const ws = await makeWorkspace("death");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    await claimAndDie(run.id, DEMO_POLICY.maxAttempts);
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
    await claimAndDie(run.id, 1);
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
    expect(await tracker(run.id).complete({ runId: run.id, attempt: 1, outcome: "succeeded" })).toEqual({ ok: true, status: "completed" });
  });

  // The redelivery runs the whole 3 s input: with the first delivery, near vitest's default 5 s per test.
  it("an attempt declared lost while still alive is fenced at its next heartbeat and its message goes back to the queue", { timeout: 15_000 }, async () => {
    const ws = await makeWorkspace("death");
    // 3 s of work: heartbeats at 1 s and 2 s, so only the fence can end the first delivery early.
    const { run, message } = await createRun(ws, { steps: 30, stepMs: 100 });
    let declaredLost: Promise<void> | undefined;
    // Once the attempt runs, its heartbeats "stop reaching" the tracker: the tracker ages past the timeout and its alarm fires.
    const spy = spyingEnv((c) => {
      if (c.method === "claim" && c.answer.ok) {
        declaredLost = ageTracker(run.id, SILENT_MS).then(() => runAlarm(run.id));
      }
    });

    const started = Date.now();
    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-alive" }], spy.env);
    await declaredLost;
    expect(Date.now() - started).toBeLessThan(2_800);

    expect(spy.calls.filter((c) => c.method === "heartbeat").map((c) => c.answer)).toEqual([{ ok: false, refusal: "fenced" }]);
    expect(spy.calls.some((c) => c.method === "complete" || c.method === "fail")).toBe(false);
    // Not acked: the run awaits a redelivery and this message is the only one it has.
    expect(first.result.explicitAcks).toEqual([]);
    expect(first.retries.map((r) => r.msgId)).toEqual(["m-alive"]);
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2, id: "m-alive" }]));
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
