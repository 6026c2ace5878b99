/**
 * A queued run whose message never arrives (contract section 4.1, queued
 * deadline): the tracker armed at acceptance reconciles it as
 * lifecycle.stale_queued once staleQueuedAfterMs has passed since it became
 * due, and a delivery that turns up afterwards runs nothing.
 */
import { describe, expect, it } from "vitest";
import { explainReason } from "../../src/lifecycle";
import { enqueueRun } from "../../src/queue/producer";
import { operationMessageFor } from "../../src/queue/messages";
import type { RunRecord } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  brokenQueueEnv,
  capturingErrorLog,
  createRun,
  deliver,
  expectAcked,
  getRun,
  runAlarm,
  service,
  spyingEnv,
  trackerState,
} from "../support/execution";

const STALE_MS = DEMO_POLICY.staleQueuedAfterMs;

/** Accept a run whose message is lost at the producer (the queue refuses the send). */
async function runWithLostMessage(workspaceId: string): Promise<RunRecord> {
  const { value, json } = await capturingErrorLog(() =>
    enqueueRun(brokenQueueEnv(), service(), { workspaceId, type: "demo.work", input: { steps: 2, stepMs: 0 }, initiator: "user:test" }),
  );
  expect(value.sent).toBe(false);
  if (!value.answer.ok) throw new Error("the run was not accepted");
  const run = value.answer.run;
  expect(json.filter((l) => l.event === "producer.send_failed")).toEqual([
    expect.objectContaining({ runId: run.id, consequence: `run converges as lifecycle.stale_queued within ${STALE_MS} ms` }),
  ]);
  return run;
}

describe("a queued run whose message is lost", () => {
  it("stays queued until its deadline, then the alarm fails it lifecycle.stale_queued (reconciled_by tracker_alarm)", async () => {
    const ws = await makeWorkspace("stale");
    const run = await runWithLostMessage(ws);
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 0, deadlineAt: run.createdAt + STALE_MS });
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 0, queuedSince: run.createdAt });
    expect(await alarmAt(run.id)).toBe(run.createdAt + STALE_MS);

    // Halfway: the alarm (if it fired early) waits and re-arms at the same deadline.
    const half = await ageTracker(run.id, STALE_MS / 2);
    const untouched = await snapshot(run.id);
    await runAlarm(run.id);
    expect(await snapshot(run.id)).toEqual(untouched);
    expect(await alarmAt(run.id)).toBe(half.queuedSince + STALE_MS);

    const aged = await ageTracker(run.id, STALE_MS / 2 + 1_000);
    await runAlarm(run.id);

    const after = await getRun(run.id);
    expect(after).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 0,
      reasonCode: "lifecycle.stale_queued",
      reconciledBy: "tracker_alarm",
      failureMessage: explainReason("lifecycle.stale_queued").whatHappened,
      deadlineAt: null,
      startedAt: null,
    });
    expect(after.diagnostics).toMatchObject({
      detectedBy: "tracker_alarm",
      evidence: { queuedSince: aged.queuedSince, deadline: aged.queuedSince + STALE_MS, staleQueuedAfterMs: STALE_MS },
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.reconciled"]);
    expect(await onlyEvent(run.id, "run.reconciled")).toMatchObject({
      actor: "system:tracker",
      metadata: { reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 } },
    });
    expect(await trackerState(run.id)).toMatchObject({ status: "completed" });
  });

  it("a late delivery after the reconciliation is acked and the handler never runs", async () => {
    const ws = await makeWorkspace("stale");
    const run = await runWithLostMessage(ws);
    await ageTracker(run.id, STALE_MS + 1_000);
    await runAlarm(run.id);
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_queued" });

    const spy = spyingEnv();
    expectAcked(await deliver(OPERATIONS, [{ body: operationMessageFor(run), attempts: 1 }], spy.env));

    expect(spy.calls.map((c) => [c.method, c.answer])).toEqual([["claim", { ok: false, refusal: "terminal" }]]);
    expect(await snapshot(run.id)).toEqual(before);
  });
});

it("after a retryable failure the queued deadline counts from the retry's due time, not from the failure", async () => {
  const ws = await makeWorkspace("stale");
  const { run, message } = await createRun(ws, { steps: 1, stepMs: 0, throwAtStep: 1, throwTimes: 1 });
  const first = await deliver(OPERATIONS, [{ body: message, attempts: 1 }]);
  expect(first.retries).toHaveLength(1);
  const requeued = await getRun(run.id);
  const dueAt = requeued.updatedAt + DEMO_POLICY.retryDelaySeconds * 1000;
  expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 1, queuedSince: dueAt });

  // staleQueuedAfterMs after the failure, but not yet after the due time: still waiting.
  await ageTracker(run.id, STALE_MS + 1_000);
  await runAlarm(run.id);
  expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });

  await ageTracker(run.id, DEMO_POLICY.retryDelaySeconds * 1000);
  await runAlarm(run.id);
  expect(await getRun(run.id)).toMatchObject({
    status: "completed",
    outcome: "failed",
    attempt: 1,
    reasonCode: "lifecycle.stale_queued",
    reconciledBy: "tracker_alarm",
    diagnostics: { lastError: { attempt: 1, reasonCode: "handler.error" } },
  });
  expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed", "run.reconciled"]);
});
