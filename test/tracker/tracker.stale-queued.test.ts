/**
 * A queued run whose dispatch nobody claims (contract v2 section 4): the
 * tracker re-sends the same dispatch at 1/3 and 2/3 of staleQueuedAfterMs
 * (each a `run.redispatched` event), and only then reconciles the run as
 * lifecycle.stale_queued, with the sends as evidence. A send the queue refuses
 * stays in the tracker's outbox and is retried with backoff. A delivery that
 * turns up after the verdict runs nothing.
 */
import { describe, expect, it } from "vitest";
import { explainReason } from "../../src/lifecycle";
import { env } from "cloudflare:workers";
import { handToTracker } from "../../src/queue/producer";
import { operationMessageFor } from "../../src/queue/messages";
import { MAX_SENDS, backoffMs, resendAt, staleVerdictAt } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  brokenQueue,
  capturingQueue,
  createRun,
  currentMessage,
  deliver,
  expectAcked,
  getRun,
  patchTrackerEnv,
  runAlarm,
  service,
  spyingEnv,
  trackerState,
} from "../support/execution";

const STALE_MS = DEMO_POLICY.staleQueuedAfterMs;

describe("a dispatch nobody claims", () => {
  it("is re-sent twice before the run is declared stale_queued, with the sends as evidence", async () => {
    const ws = await makeWorkspace("stale");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    const first = await trackerState(run.id);
    expect(await alarmAt(run.id)).toBe(resendAt(first!.dispatch, DEMO_POLICY));

    const sends: number[] = [];
    for (let i = 1; i < MAX_SENDS; i++) {
      await ageTracker(run.id, STALE_MS / MAX_SENDS);
      const captured = capturingQueue();
      await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: captured.queue }));
      await runAlarm(run.id);
      // The same dispatch again: a copy is harmless (the tracker starts it once).
      expect(captured.sent).toEqual([{ body: operationMessageFor(run, 1), delaySeconds: undefined }]);
      sends.push((await trackerState(run.id))!.dispatch.sends);
      expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 0 });
    }
    expect(sends).toEqual([2, 3]);
    const redispatched = (await eventsOf(run.id)).filter((e) => e.action === "run.redispatched");
    expect(redispatched.map((e) => e.metadata)).toEqual([
      { dispatch: 1, sends: 2, attempt: 0 },
      { dispatch: 1, sends: 3, attempt: 0 },
    ]);

    const aged = await ageTracker(run.id, STALE_MS / MAX_SENDS + 1_000);
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
      evidence: { dueAt: aged.dispatch.dueAt, deadline: staleVerdictAt(aged, DEMO_POLICY), staleQueuedAfterMs: STALE_MS, dispatch: 1, sends: 3 },
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.redispatched", "run.redispatched", "run.reconciled"]);
    expect(await onlyEvent(run.id, "run.reconciled")).toMatchObject({
      actor: "system:tracker",
      metadata: { reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 } },
    });
    expect(explainReason("lifecycle.stale_queued").whatHappened).not.toMatch(/likely lost/);
  });

  it("a re-sent dispatch that is claimed runs once; the other copy starts nothing", async () => {
    const ws = await makeWorkspace("stale");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
    await ageTracker(run.id, STALE_MS / MAX_SENDS);
    await runAlarm(run.id);
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 1, sends: 2 } });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const spy = spyingEnv();
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }], spy.env));
    expect(spy.calls.map((c) => [c.method, c.answer])).toEqual([["claim", { ok: false, refusal: "terminal" }]]);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.redispatched", "run.attempt_started", "run.completed"]);
  });

  it("a late delivery after the reconciliation is acked and the handler never runs", async () => {
    const ws = await makeWorkspace("stale");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
    for (let i = 0; i < MAX_SENDS; i++) {
      await ageTracker(run.id, STALE_MS / MAX_SENDS + 1);
      await runAlarm(run.id);
    }
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_queued" });

    const spy = spyingEnv();
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], spy.env));

    expect(spy.calls.map((c) => [c.method, c.answer])).toEqual([["claim", { ok: false, refusal: "terminal" }]]);
    expect(await snapshot(run.id)).toEqual(before);
  });
});

describe("a dispatch the queue refuses", () => {
  it("stays in the tracker's outbox (202 still: the tracker holds it) and is sent by the alarm once the queue is back", async () => {
    const ws = await makeWorkspace("stale");
    const probe = await enqueueRunWithQueue(ws, brokenQueue());
    expect(probe.tracked).toBe(true);
    const run = probe.run;
    const held = await trackerState(run.id);
    expect(held).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 0 }, failures: 1 });
    expect(held?.errors).toEqual([expect.objectContaining({ where: "dispatch", message: expect.stringContaining("queue unavailable") })]);
    expect(await alarmAt(run.id)).toBe(held!.retryAt);

    await ageTracker(run.id, backoffMs(1));
    const captured = capturingQueue();
    await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: captured.queue }));
    await runAlarm(run.id);

    expect(captured.sent.map((s) => s.body)).toEqual([operationMessageFor(run, 1)]);
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 1, sends: 1 }, failures: 0, retryAt: null });
    expect(await actionsOf(run.id)).toEqual(["run.queued"]);
    expectAcked(await deliver(OPERATIONS, [{ body: operationMessageFor(run, 1), attempts: 1 }]));
    const after = await getRun(run.id);
    expect(after).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    // The refused send is on the run's record.
    expect(after.diagnostics.infrastructureErrors).toEqual([expect.objectContaining({ where: "dispatch" })]);
  });
});

describe("a dispatch that never reached the queue, its alarm held past the stale time", () => {
  it("is sent, not declared stale_queued, while the queue has refused it fewer than MAX_SENDS times", async () => {
    const ws = await makeWorkspace("stale-late");
    const { run } = await enqueueRunWithQueue(ws, brokenQueue());
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 1, sends: 0, refused: 1 } });
    // The platform ran the alarm long after its time (or D1 kept it busy): the stale time has passed.
    await ageTracker(run.id, STALE_MS + 1_000);
    const captured = capturingQueue();
    await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: captured.queue }));
    await runAlarm(run.id);

    expect(captured.sent.map((c) => c.body)).toEqual([operationMessageFor(run, 1)]);
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1 } });
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 0 });
    expect(await actionsOf(run.id)).toEqual(["run.queued"]);
  });

  it("is declared stale_queued once the queue refused it MAX_SENDS times", async () => {
    const ws = await makeWorkspace("stale-refused");
    const { run } = await enqueueRunWithQueue(ws, brokenQueue());
    await ageTracker(run.id, STALE_MS + 1_000);
    for (let refused = 2; refused <= MAX_SENDS; refused++) {
      await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: brokenQueue() }));
      await runAlarm(run.id);
      expect(await trackerState(run.id)).toMatchObject({ dispatch: { sends: 0, refused } });
      expect(await getRun(run.id)).toMatchObject({ status: "queued" });
      await ageTracker(run.id, backoffMs(refused));
    }
    await runAlarm(run.id);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "failed", reasonCode: "lifecycle.stale_queued", reconciledBy: "tracker_alarm" });
  });
});

it("after a retryable failure the queued deadline counts from the retry's due time, not from the failure", async () => {
  const ws = await makeWorkspace("stale");
  const { run, message } = await createRun(ws, { steps: 1, stepMs: 0, throwAtStep: 1, throwTimes: 1 });
  expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
  const requeued = await getRun(run.id);
  const dueAt = requeued.updatedAt + DEMO_POLICY.retryDelaySeconds * 1000;
  expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 1, dispatch: { n: 2, dueAt } });
  expect(requeued.deadlineAt).toBe(dueAt + STALE_MS);
});

/** Accept a run whose tracker sees `queue` as its producer: the run is written, its tracker patched, then handed over. */
async function enqueueRunWithQueue(workspaceId: string, queue: Queue) {
  const created = await service().create({ workspaceId, type: "demo.work", input: { steps: 1, stepMs: 0 }, initiator: "user:test" });
  if (!created.ok) throw new Error("not created");
  await patchTrackerEnv(created.run.id, (e) => ({ ...e, OPERATIONS_QUEUE: queue }));
  return { run: created.run, tracked: await handToTracker(env, created.run) };
}
