/**
 * Every way one delivery can end, through the Worker's queue entry on the
 * Workers runtime (real D1 and trackers): the run's final record, the audit
 * trail in order, and what the message was told (ack, or retry with delay).
 * Messages are delivered by hand (see test/support/execution.ts).
 */
import { describe, expect, it } from "vitest";
import { EMPTY_PROGRESS, reasonFamily } from "../../src/lifecycle";
import { FALLBACK_POLICY } from "../../src/operations";
import { makeWorkspace } from "../support/fixtures";
import { DEMO_POLICY, OPERATIONS, actionsOf, createRun, deliver, expectAcked, getRun, trackerState } from "../support/execution";

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
  it("retries after the policy's delay while attempts remain, then succeeds on the redelivery", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0, throwAtStep: 1, throwTimes: 1 });

    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-retry" }]);
    expect(first.retries).toEqual([{ msgId: "m-retry", delaySeconds: RETRY_DELAY_SECONDS }]);
    expect(first.result.explicitAcks).toEqual([]);

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

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2, id: "m-retry" }]));

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

  it("fails handler.error once retries are exhausted, keeping the last error; the last message is acked", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0, throwAtStep: 2, throwTimes: 5 });
    expect(run.maxAttempts).toBe(3);

    for (const attempts of [1, 2]) {
      const d = await deliver(OPERATIONS, [{ body: message, attempts, id: "m-exhaust" }]);
      expect(d.retries, `delivery ${attempts}`).toEqual([{ msgId: "m-exhaust", delaySeconds: RETRY_DELAY_SECONDS }]);
      expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: attempts });
    }
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 3, id: "m-exhaust" }]));

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 3,
      reasonCode: "handler.error",
      reconciledBy: null,
      failureMessage: "Attempt 3 of 3 failed: RetryableError: Simulated transient error at step 2 (attempt 3).",
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
  it("a hanging handler is ended by the attempt timeout: failed attempt.timeout, acked, not retried", async () => {
    const ws = await makeWorkspace("paths");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 0, hangAtStep: 2, timeoutMs: 300 });

    const started = Date.now();
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(300);
    expect(elapsed).toBeLessThan(DEMO_POLICY.heartbeatTimeoutMs);

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "attempt.timeout",
      reconciledBy: null,
      failureMessage: "Attempt 1 of 3 failed: The attempt exceeded its timeout of 300 ms.",
    });
    expect(after.diagnostics.lastError).toMatchObject({ attempt: 1, reasonCode: "attempt.timeout" });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.failed"]);
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
