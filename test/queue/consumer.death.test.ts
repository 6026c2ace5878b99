/**
 * demo.work's dieAtStep simulates what a crash does on the platform: the
 * consumer invocation ends with an exception at that step, its unacked
 * messages are redelivered, and the attempt stops heartbeating. The tracker
 * declares the attempt lost and sends a new dispatch at once; the redelivered
 * copy of the spent dispatch starts nothing. Every attempt dies the same way,
 * so the run spends all its attempts and ends `lifecycle.heartbeat_lost`
 * (issue 9, input 1) — never `stale_queued`, never with attempts unspent.
 */
import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import worker from "../../src/index";
import { InvocationCrash } from "../../src/queue/consumer";
import { makeWorkspace } from "../support/fixtures";
import {
  DEMO_POLICY,
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

/** Deliver one message and expect the invocation to crash (the queue() entry rejects). */
async function deliverCrashing(body: unknown): Promise<void> {
  const batch = createMessageBatch(OPERATIONS, [{ id: `msg_${crypto.randomUUID()}`, timestamp: Date.now(), attempts: 1, body }]);
  await expect(worker.queue(batch, env, createExecutionContext())).rejects.toBeInstanceOf(InvocationCrash);
}

it("an attempt that crashes is declared lost and re-dispatched at once; after the last attempt, heartbeat_lost", async () => {
  const ws = await makeWorkspace("die");
  const { run, message } = await createRun(ws, { steps: 3, stepMs: 0, dieAtStep: 2 });

  for (const attempt of [1, 2, 3]) {
    const body = attempt === 1 ? message : await currentMessage(run.id);
    await deliverCrashing(body);
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt });
    // The queue redelivers the crashed invocation's message: its dispatch is spent, nothing starts.
    expectAcked(await deliver(OPERATIONS, [{ body, attempts: 2 }]));
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt });

    await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs + 1);
    await runAlarm(run.id);
    if (attempt < 3) {
      // Lost, with attempts left: a new dispatch due now, already sent.
      expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt, reasonCode: null });
      expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt, dispatch: { n: attempt + 1, claimed: false, sends: 1 } });
    }
  }

  const after = await getRun(run.id);
  expect(after).toMatchObject({
    status: "completed",
    outcome: "failed",
    attempt: 3,
    maxAttempts: 3,
    reasonCode: "lifecycle.heartbeat_lost",
    reconciledBy: "tracker_alarm",
  });
  expect(await actionsOf(run.id)).toEqual([
    "run.queued",
    "run.attempt_started",
    "run.attempt_lost",
    "run.attempt_started",
    "run.attempt_lost",
    "run.attempt_started",
    "run.reconciled",
  ]);
});

it("an attempt that works on without heartbeats is lost and re-dispatched; its late success is discarded and attempt 2 decides", async () => {
  const ws = await makeWorkspace("die");
  // The variant of issue 9, input 1: heartbeats stop (a broken channel) while the work goes on.
  // Attempt 1 is claimed directly and never heartbeats, as its consumer would look to the tracker.
  const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
  const stub = tracker(run.id);
  expect((await stub.claim({ runId: run.id, dispatch: 1 })).ok).toBe(true);
  await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs + 1);
  await runAlarm(run.id);
  expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });

  // Attempt 1 now reports success: fenced, recorded, nothing changes.
  const late = await stub.report({ kind: "result", attempt: 1, outcome: "succeeded" });
  expect(late).toMatchObject({ ok: false, refusal: "fenced" });
  expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1, outcome: "pending" });

  // Attempt 2 runs from the new dispatch and decides.
  expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));
  expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, reasonCode: null });
  expect(await actionsOf(run.id)).toEqual([
    "run.queued",
    "run.attempt_started",
    "run.attempt_lost",
    "run.late_result_discarded",
    "run.attempt_started",
    "run.completed",
  ]);
});
