/**
 * The dead-letter bridge (contract v2 section 4.3): a message the queue gave
 * up on resolves its run as queue.max_attempts_exceeded only when it is the
 * run's current, unclaimed dispatch and the run is not terminal; running it
 * again, or after another detector, changes nothing more.
 */
import { describe, expect, it } from "vitest";
import { explainReason } from "../../src/lifecycle";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  DLQ,
  OPERATIONS,
  actionsOf,
  ageTracker,
  createRun,
  currentMessage,
  deliver,
  expectAcked,
  getRun,
  runAlarm,
  tracker,
  trackerState,
} from "../support/execution";

describe("a dead-lettered message", () => {
  it("the current dispatch, unclaimed: queue.max_attempts_exceeded (reconciled_by dead_letter), keeping the attempt's original error", async () => {
    const ws = await makeWorkspace("dlq");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0, throwAtStep: 1, throwTimes: 5 });
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const original = "RetryableError: Simulated transient error at step 1 (attempt 1).";

    // The first dispatch is spent (it started attempt 1): dead-lettered copies of it change nothing.
    expectAcked(await deliver(DLQ, [{ body: message, attempts: 1, id: "m-old" }]));
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });

    const current = await currentMessage(run.id);
    expect(current).toMatchObject({ dispatch: 2 });
    expectAcked(await deliver(DLQ, [{ body: current, attempts: 1, id: "m-dead" }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "queue.max_attempts_exceeded",
      reconciledBy: "dead_letter",
      failureMessage: explainReason("queue.max_attempts_exceeded").whatHappened,
      deadlineAt: null,
    });
    expect(after.diagnostics).toMatchObject({
      detectedBy: "dead_letter",
      evidence: { queue: DLQ, messageId: "m-dead", dispatch: 2, dlqDeliveries: 1 },
      lastError: { attempt: 1, message: original, reasonCode: "handler.error" },
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed", "run.reconciled"]);
    const event = await onlyEvent(run.id, "run.reconciled");
    expect(event).toMatchObject({ actor: "system:dead-letter", metadata: { from: "queued", to: "completed", lastError: original } });
    // The bridge goes through the tracker, so the tracker knows at once.
    expect(await trackerState(run.id)).toMatchObject({ status: "completed" });
  });

  it("a dispatch that started an attempt still running is ignored: a live attempt is never failed by a dead copy", async () => {
    const ws = await makeWorkspace("dlq");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
    expect((await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).ok).toBe(true);

    expectAcked(await deliver(DLQ, [{ body: message, attempts: 1 }]));

    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt: 1, reasonCode: null });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started"]);
    await tracker(run.id).report({ kind: "result", attempt: 1, outcome: "succeeded" });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded" });
  });

  it("after the tracker's own deadline, the tracker finds the run terminal and adds nothing", async () => {
    const ws = await makeWorkspace("dlq");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
    expectAcked(await deliver(DLQ, [{ body: message, attempts: 1 }]));
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "completed", reason_code: "queue.max_attempts_exceeded" });

    await ageTracker(run.id, DEMO_POLICY.staleQueuedAfterMs + 1_000);
    await runAlarm(run.id);

    expect(await snapshot(run.id)).toEqual(before);
    expect(await trackerState(run.id)).toMatchObject({ status: "completed" });
  });

  it("after the run succeeded changes nothing and records no event", async () => {
    const ws = await makeWorkspace("dlq");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "completed", outcome: "succeeded" });

    expectAcked(await deliver(DLQ, [{ body: message, attempts: 1 }]));

    expect(await snapshot(run.id)).toEqual(before);
  });

  it("delivered twice (even in one batch) resolves the run once: one run.reconciled", async () => {
    const ws = await makeWorkspace("dlq");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });

    const together = await deliver(DLQ, [
      { body: message, attempts: 1, id: "m-dead-a" },
      { body: message, attempts: 1, id: "m-dead-b" },
    ]);
    expect([...together.result.explicitAcks].sort()).toEqual(["m-dead-a", "m-dead-b"]);
    const once = await snapshot(run.id);
    expectAcked(await deliver(DLQ, [{ body: message, attempts: 2, id: "m-dead-a" }]));

    expect(await snapshot(run.id)).toEqual(once);
    expect((await eventsOf(run.id)).filter((e) => e.action === "run.reconciled")).toHaveLength(1);
    expect(await getRun(run.id)).toMatchObject({ reasonCode: "queue.max_attempts_exceeded", reconciledBy: "dead_letter" });
  });
});
