/**
 * Every way one delivery can end, through the Worker's queue entry on the
 * Workers runtime (real D1 and trackers): the run's final record, the audit
 * trail in order, and what the message was told (acked once the tracker decided:
 * retries are the tracker's new dispatches, never a redelivery).
 * Messages are delivered by hand (see test/support/execution.ts).
 */
import { describe, expect, it } from "vitest";
import { EMPTY_PROGRESS, reasonFamily } from "../../src/lifecycle";
import { FALLBACK_POLICY } from "../../src/operations";
import { makeWorkspace } from "../support/fixtures";
import { DEMO_POLICY, OPERATIONS, actionsOf, createRun, currentMessage, deliver, expectAcked, getRun, trackerState } from "../support/execution";

const RETRY_DELAY_SECONDS = DEMO_POLICY.retryDelaySeconds;

describe("a delivery that returns a result", () => {
  it("succeeds: completed/succeeded with the handler's progress, acked", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 5 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "succeeded",
      attempt: 1,
      reasonCode: null,
      reconciledBy: null,
      failureMessage: null,
      deadlineAt: null,
      progress: { total: 3, processed: 3, succeeded: 3, failed: 0 },
    });
    expect(after.completedAt).not.toBeNull();
    expect(after.diagnostics.attempts).toEqual([expect.objectContaining({ attempt: 1, ended: "succeeded" })]);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
    // The tracker follows D1: it now answers late calls from its own state.
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 1 });
  });

  it("partially succeeds: partially_succeeded with the handler's message and the failed item counted", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 4, stepMs: 0, partialAtStep: 2 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "partially_succeeded",
      attempt: 1,
      reasonCode: null,
      reconciledBy: null,
      failureMessage: "1 of 4 items failed (simulated).",
      progress: { total: 4, processed: 4, succeeded: 3, failed: 1 },
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("fails by its own verdict: failed handler.failed (execution family), acked, not retried", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 0, failAtStep: 2 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "handler.failed",
      reconciledBy: null,
      failureMessage: "Step 2 of 3 failed (simulated).",
      progress: { total: 3, processed: 1, succeeded: 1, failed: 0 },
    });
    expect(reasonFamily("handler.failed")).toBe("execution");
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });
});

describe("a delivery whose handler throws", () => {
  it("a retryable error while attempts remain: acked, and the tracker sends a new dispatch due after the retry delay", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0, throwAtStep: 1, throwTimes: 1 });

    // The message is acked: the retry is the tracker's new dispatch, never this message's redelivery.
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-retry" }]));

    const requeued = await getRun(run.id);
    expect(requeued).toMatchObject({ status: "queued", outcome: "pending", attempt: 1, reasonCode: null, reconciledBy: null });
    expect(requeued.diagnostics.lastError).toMatchObject({
      attempt: 1,
      reasonCode: "handler.error",
      message: "RetryableError: Simulated transient error at step 1 (attempt 1).",
    });
    // Due again after the retry delay; stale only staleQueuedAfterMs after that.
    const failedEvent = requeued.updatedAt;
    expect(requeued.deadlineAt).toBe(failedEvent + RETRY_DELAY_SECONDS * 1000 + DEMO_POLICY.staleQueuedAfterMs);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed"]);
    const s = await trackerState(run.id);
    expect(s).toMatchObject({ status: "queued", attempt: 1, dispatch: { n: 2, claimed: false, sends: 1, dueAt: requeued.deadlineAt! - DEMO_POLICY.staleQueuedAfterMs } });

    // A redelivery of the first message starts nothing: its dispatch is spent.
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2 }]));
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });

    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "succeeded",
      attempt: 2,
      reasonCode: null,
      reconciledBy: null,
      progress: { total: 2, processed: 2, succeeded: 2, failed: 0 },
    });
    expect(after.diagnostics.attempts.map((a) => [a.attempt, a.ended])).toEqual([
      [1, "handler.error"],
      [2, "succeeded"],
    ]);
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.completed",
    ]);
  });

  it("fails handler.error once attempts are spent, keeping the last error in diagnostics and out of the failure message", async () => {
    const ws = await makeWorkspace("paths");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0, throwAtStep: 2, throwTimes: 5 });
    expect(run.maxAttempts).toBe(3);

    for (const attempt of [1, 2, 3]) {
      const s = await trackerState(run.id);
      expect(s?.dispatch.n, `dispatch for attempt ${attempt}`).toBe(attempt);
      expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));
      if (attempt < 3) expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt });
    }

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 3,
      reasonCode: "handler.error",
      reconciledBy: null,
      failureMessage: "Attempt 3 of 3 failed with an error; the error is in diagnostics.",
      deadlineAt: null,
    });
    expect(after.diagnostics.lastError).toMatchObject({
      attempt: 3,
      reasonCode: "handler.error",
      message: "RetryableError: Simulated transient error at step 2 (attempt 3).",
    });
    expect(after.diagnostics.attempts.map((a) => a.ended)).toEqual(["handler.error", "handler.error", "handler.error"]);
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.failed",
    ]);
  });
});

describe("a delivery that cannot finish or cannot start", () => {
  it("a hanging handler is ended by its timeout, a retryable failure: every attempt times out, the verdict is attempt.timeout with the progress made", async () => {
    const ws = await makeWorkspace("paths");
    // Issue 9, input 11: step 1 is done before the hang, and the verdict says so.
    const { run } = await createRun(ws, { steps: 3, stepMs: 0, hangAtStep: 2, timeoutMs: 300 });

    for (const attempt of [1, 2, 3]) {
      expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));
      if (attempt < 3) {
        expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt, progress: { total: 3, processed: 1 } });
      }
    }

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 3,
      reasonCode: "attempt.timeout",
      reconciledBy: null,
      failureMessage: "Attempt 3 of 3 failed: The attempt exceeded its timeout of 300 ms.",
      progress: { total: 3, processed: 1, succeeded: 1, failed: 0 },
    });
    expect(after.diagnostics.lastError).toMatchObject({ attempt: 3, reasonCode: "attempt.timeout" });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.failed",
    ]);
  });

  it("a type no longer registered fails operation.unknown_type under the fallback policy, acked", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { anything: true }, "removed.type");
    expect(run.maxAttempts).toBe(FALLBACK_POLICY.maxAttempts);

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "operation.unknown_type",
      reconciledBy: null,
      failureMessage: 'Attempt 1 of 3 failed: No handler is registered for type "removed.type".',
      progress: EMPTY_PROGRESS,
    });
    expect(reasonFamily("operation.unknown_type")).toBe("execution");
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.failed"]);
  });

  it("stored input that no longer validates fails input.invalid without calling the handler, acked", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 0, stepMs: 0 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "input.invalid",
      reconciledBy: null,
      progress: EMPTY_PROGRESS,
    });
    expect(after.failureMessage).toMatch(/^Attempt 1 of 3 failed: The stored input is not valid for demo\.work: steps: /);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.failed"]);
  });
});
