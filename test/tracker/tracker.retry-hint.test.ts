/**
 * A handler's retry delay (`RetryableError.retryAfterMs`, e.g. an upstream's
 * Retry-After) travels in the attempt's failure report, is stored by the
 * tracker with it, and sets when the next dispatch is due — also when D1
 * refused the failure at first and the tracker's alarm applies it later.
 */
import { describe, expect, it } from "vitest";
import { backoffMs } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { DEMO_POLICY, ageTracker, capturingQueue, createRun, faultyD1, getRun, patchTrackerEnv, runAlarm, tracker, trackerState } from "../support/execution";

const TRANSITION = (sql: string) => sql.includes("SET status = ?");
const HINT_MS = 600_000;

describe("a retryable failure with a retry delay of its own", () => {
  it("is due after that delay, not the policy's, and its dispatch is sent with that delay", async () => {
    const ws = await makeWorkspace("hint");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const queue = capturingQueue();
    await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: queue.queue }));

    const answer = await tracker(run.id).report({ kind: "failure", attempt: 1, reason: "handler.error", retryable: true, message: "throttled", retryAfterMs: HINT_MS });
    expect(answer).toEqual({ ok: true, applied: true, status: "queued" });

    const after = await getRun(run.id);
    expect(after.deadlineAt).toBe(after.updatedAt + HINT_MS + DEMO_POLICY.staleQueuedAfterMs);
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", dispatch: { n: 2, dueAt: after.updatedAt + HINT_MS, sends: 1 } });
    // Sent at once with the delay left until it is due: at most the hint, far above the policy's 5 s.
    expect(queue.sent).toHaveLength(1);
    expect(queue.sent[0]!.delaySeconds).toBeGreaterThan(HINT_MS / 1000 - 60);
    expect(queue.sent[0]!.delaySeconds).toBeLessThanOrEqual(HINT_MS / 1000);
  });

  it("D1 refused it at first: the stored report keeps the delay and the alarm applies it", async () => {
    const ws = await makeWorkspace("hint");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    await patchTrackerEnv(run.id, (e) => ({ ...e, DB: faultyD1(TRANSITION, { mode: "before-commit" }).db }));

    const answer = await tracker(run.id).report({ kind: "failure", attempt: 1, reason: "handler.error", retryable: true, message: "throttled", retryAfterMs: HINT_MS });
    expect(answer).toEqual({ ok: true, applied: false, status: "running" });
    expect(await trackerState(run.id)).toMatchObject({ pending: { kind: "failure", retryAfterMs: HINT_MS } });

    await ageTracker(run.id, backoffMs(1));
    await runAlarm(run.id);
    const after = await getRun(run.id);
    expect(after).toMatchObject({ status: "queued", attempt: 1 });
    expect(after.deadlineAt).toBe(after.updatedAt + HINT_MS + DEMO_POLICY.staleQueuedAfterMs);
  });
});
