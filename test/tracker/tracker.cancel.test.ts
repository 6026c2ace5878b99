/**
 * Cancel (contract v2 sections 2 and 7) on the Workers runtime, through the
 * run's real tracker and D1: a queued run ends `cancelled` at once and its
 * dispatch never starts an attempt; a running run is Cancelling until its
 * attempt stops (told through its heartbeat answer, its AbortSignal fires) or
 * the cancel grace runs out; and a cancel racing a result, the alarm or the
 * sweep ends as exactly one terminal state with exactly one terminal event.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { cancelRun } from "../../src/cancel-run";
import { cancelGraceFor, DEFAULT_SETTINGS } from "../../src/lifecycle";
import { TRACKER_RETENTION_MS } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, onlyEvent } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  capturingQueue,
  createRun,
  currentMessage,
  deliver,
  expectAcked,
  faultyD1,
  getRun,
  patchTrackerEnv,
  runAlarm,
  service,
  spyingEnv,
  tracker,
  trackerState,
} from "../support/execution";

const OPERATOR = "user:operator@cancel.test" as const;
const TERMINAL = ["run.completed", "run.failed", "run.reconciled", "run.cancelled"];
const GRACE_MS = cancelGraceFor(DEMO_POLICY, DEFAULT_SETTINGS);

async function terminalEvents(runId: string): Promise<string[]> {
  return (await actionsOf(runId)).filter((a) => TERMINAL.includes(a));
}

function cancel(workspaceId: string, runId: string, reason: string | null = null) {
  return cancelRun(env, { workspaceId, runId, actor: OPERATOR, actorId: "usr_op", reason });
}

/** A run whose attempt 1 the tracker started (claimed by hand, no handler running). */
async function runningRun(tag: string) {
  const ws = await makeWorkspace(tag);
  const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
  expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true, run: { attempt: 1 } });
  return { ws, runId: run.id, t: tracker(run.id) };
}

describe("cancelling a queued run", () => {
  it("ends it cancelled at once, with run.cancel_requested then run.cancelled naming the operator; its dispatch starts nothing", async () => {
    const ws = await makeWorkspace("cancel-queued");
    const { run, message } = await createRun(ws, { steps: 3, stepMs: 0 });

    const answer = await cancel(ws, run.id, "wrong input");
    expect(answer).toMatchObject({ kind: "cancelled", run: { status: "completed", outcome: "cancelled" } });
    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "cancelled",
      reasonCode: "operator.cancelled",
      reconciledBy: null,
      deadlineAt: null,
      cancelRequestedBy: OPERATOR,
      failureMessage: "Cancelled by operator@cancel.test: wrong input",
    });
    const events = await eventsOf(run.id);
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ["run.queued", "user:test"],
      ["run.cancel_requested", OPERATOR],
      ["run.cancelled", OPERATOR],
    ]);
    expect(events[1]!.metadata).toMatchObject({ reason: "wrong input", actorId: "usr_op", status: "queued" });
    expect(events[2]!.metadata).toMatchObject({ from: "queued", to: "completed", stopped: "queued", reason: "wrong input" });

    // The tracker knows: a later claim of its dispatch is refused, the message is acked and starts nothing.
    expect(await trackerState(run.id)).toMatchObject({ status: "completed" });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toEqual({ ok: false, refusal: "terminal" });
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    // Its alarm only waits to forget the run: no re-send, no verdict.
    const alarm = await alarmAt(run.id);
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeGreaterThanOrEqual((await getRun(run.id)).completedAt! + TRACKER_RETENTION_MS - 1_000);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.cancel_requested", "run.cancelled"]);
  });

  it("a retrying run (waiting for attempt 2) ends cancelled at once, and its due dispatch is never sent again", async () => {
    const ws = await makeWorkspace("cancel-retrying");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0, throwAtStep: 1, throwTimes: 2 });
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });
    const sent = capturingQueue();
    await patchTrackerEnv(run.id, (e) => ({ ...e, OPERATIONS_QUEUE: sent.queue }));

    expect(await cancel(ws, run.id)).toMatchObject({ kind: "cancelled" });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "cancelled", attempt: 1 });
    await runAlarm(run.id);
    expect(sent.sent).toEqual([]);
    expect(await terminalEvents(run.id)).toEqual(["run.cancelled"]);
  });
});

describe("cancelling a running run", () => {
  it("is Cancelling: run.cancel_requested, the heartbeat answer carries the cancel, a second cancel writes nothing; the attempt's stop ends it cancelled", async () => {
    const { ws, runId, t } = await runningRun("cancel-running");
    const first = await cancel(ws, runId, "stop it");
    expect(first).toMatchObject({ kind: "cancelling", already: false, run: { status: "running" } });
    expect(await getRun(runId)).toMatchObject({ status: "running", outcome: "pending", cancelRequestedBy: OPERATOR });
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: true, cancelRequested: true });

    // Idempotent: the same cancel again is answered the same, with no second event.
    expect(await cancel(ws, runId, "again")).toMatchObject({ kind: "cancelling", already: true });
    expect(await actionsOf(runId)).toEqual(["run.queued", "run.attempt_started", "run.cancel_requested"]);

    expect(await t.report({ kind: "stopped", attempt: 1 })).toEqual({ ok: true, applied: true, status: "completed" });
    const ended = await getRun(runId);
    expect(ended).toMatchObject({ status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled", attempt: 1 });
    expect(ended.diagnostics.attempts.find((a) => a.attempt === 1)?.ended).toBe("cancelled (stopped)");
    const done = await onlyEvent(runId, "run.cancelled");
    expect(done).toMatchObject({ actor: OPERATOR, metadata: { stopped: "stopped", detectedBy: "system:consumer", attempt: 1 } });
    // A terminal run's cancel changes nothing.
    expect(await cancel(ws, runId)).toMatchObject({ kind: "terminal" });
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
  });

  it("the consumer's attempt hears the cancel in its heartbeat answer, its handler's AbortSignal fires, and the run ends cancelled", async () => {
    const ws = await makeWorkspace("cancel-consumer");
    // 50 steps of a second: it would run for 50 s; the cancel stops it at the next heartbeat (every 1 s).
    const { run } = await createRun(ws, { steps: 50, stepMs: 1_000 });
    let cancelling: ReturnType<typeof cancel> | null = null;
    const spy = spyingEnv((call) => {
      if (call.method === "claim" && call.answer.ok) cancelling = cancel(ws, run.id, "from the consumer test");
    });
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }], spy.env));
    expect(await cancelling).toMatchObject({ kind: "cancelling" });

    const heard = spy.calls.filter((c) => c.method === "heartbeat").map((c) => c.answer);
    expect(heard).toContainEqual({ ok: true, cancelRequested: true });
    const reports = spy.calls.flatMap((c) => (c.method === "report" ? [c.report] : []));
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ kind: "stopped", attempt: 1 });
    const ended = await getRun(run.id);
    expect(ended).toMatchObject({ status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled" });
    // Stopped long before its 50 steps: the progress it had made is kept.
    expect(ended.progress.processed).toBeLessThan(50);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.cancel_requested", "run.cancelled"]);
  });

  it("a handler that ignores its signal keeps the attempt (and its heartbeats) going until a hard stop; the run still ends cancelled", async () => {
    const ws = await makeWorkspace("cancel-ignored");
    // Hangs at step 1 ignoring the signal; only its own 6 s timeout ends the attempt.
    const { run } = await createRun(ws, { steps: 2, stepMs: 0, hangAtStep: 1, timeoutMs: 6_000 });
    let cancelling: ReturnType<typeof cancel> | null = null;
    const spy = spyingEnv((call) => {
      if (call.method === "claim" && call.answer.ok) cancelling = cancel(ws, run.id);
    });
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }], spy.env));
    expect(await cancelling).toMatchObject({ kind: "cancelling" });
    // Heard the cancel, and went on heartbeating (the handler had not stopped) until its timeout.
    const heard = spy.calls.flatMap((c) => (c.method === "heartbeat" ? [c.answer] : []));
    expect(heard).toContainEqual({ ok: true, cancelRequested: true });
    const reports = spy.calls.flatMap((c) => (c.method === "report" ? [c.report] : []));
    expect(reports).toEqual([expect.objectContaining({ kind: "failure", reason: "attempt.timeout" })]);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "cancelled", attempt: 1 });
    expect(await onlyEvent(run.id, "run.cancelled")).toMatchObject({ metadata: { stopped: "reported attempt.timeout" } });
  });

  it("an attempt that does not stop is ended cancelled by the tracker's alarm once the cancel grace has passed", async () => {
    const { ws, runId, t } = await runningRun("cancel-grace");
    await cancel(ws, runId);
    // The alarm is re-armed at the grace's end (the heartbeat deadline comes first only if the attempt goes silent).
    await ageTracker(runId, GRACE_MS + 1_000);
    // Still alive (it heartbeats) but ignoring the cancel.
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: true, cancelRequested: true });
    await runAlarm(runId);

    const ended = await getRun(runId);
    expect(ended).toMatchObject({ status: "completed", outcome: "cancelled", reconciledBy: null });
    expect(ended.diagnostics.attempts.find((a) => a.attempt === 1)?.ended).toBe("cancelled (grace expired)");
    expect(await onlyEvent(runId, "run.cancelled")).toMatchObject({ actor: OPERATOR, metadata: { stopped: "grace_expired", detectedBy: "system:tracker" } });
    // The attempt is fenced now; its late report changes nothing.
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: false, refusal: "terminal" });
    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded" })).toMatchObject({ ok: false });
    expect(await getRun(runId)).toMatchObject({ outcome: "cancelled" });
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
  });

  it("before the grace, the alarm waits: a Cancelling run is not declared lost or re-dispatched while it heartbeats", async () => {
    const { ws, runId, t } = await runningRun("cancel-wait");
    await cancel(ws, runId);
    await ageTracker(runId, GRACE_MS - 5_000);
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: true, cancelRequested: true });
    await runAlarm(runId);
    expect(await getRun(runId)).toMatchObject({ status: "running", attempt: 1 });
    expect(await actionsOf(runId)).toEqual(["run.queued", "run.attempt_started", "run.cancel_requested"]);
    await t.report({ kind: "stopped", attempt: 1 });
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
  });

  it("a Cancelling attempt that goes silent ends cancelled (not lost and re-dispatched) at its heartbeat deadline", async () => {
    const { ws, runId } = await runningRun("cancel-silent");
    await cancel(ws, runId);
    await ageTracker(runId, DEMO_POLICY.heartbeatTimeoutMs + 1_000);
    await runAlarm(runId);
    expect(await getRun(runId)).toMatchObject({ status: "completed", outcome: "cancelled", attempt: 1 });
    expect(await onlyEvent(runId, "run.cancelled")).toMatchObject({ metadata: { stopped: "heartbeat lost" } });
    expect(await actionsOf(runId)).not.toContain("run.attempt_lost");
  });
});

describe("a cancel racing the run's other writers ends in exactly one terminal state with one terminal event", () => {
  it("a success the tracker already holds (D1 refused it for a moment) wins over a cancel that comes after it", async () => {
    const { ws, runId, t } = await runningRun("race-held");
    // The transition's compare-and-set (its SET list starts with `status`; a heartbeat flush's does not).
    const d1 = faultyD1((sql) => /UPDATE operation_runs SET status = \?/.test(sql), { times: 1 });
    await patchTrackerEnv(runId, (e) => ({ ...e, DB: d1.db }));
    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded" })).toEqual({ ok: true, applied: false, status: "running" });
    expect(d1.struck()).toBe(1);

    expect(await cancel(ws, runId)).toMatchObject({ kind: "terminal", run: { outcome: "succeeded" } });
    expect(await getRun(runId)).toMatchObject({ status: "completed", outcome: "succeeded", cancelRequestedAt: null });
    expect(await terminalEvents(runId)).toEqual(["run.completed"]);
    expect(await actionsOf(runId)).not.toContain("run.cancel_requested");
  });

  it("a result reported after the cancel was taken ends the run cancelled, keeping what the attempt reported", async () => {
    const { ws, runId, t } = await runningRun("race-after");
    await cancel(ws, runId);
    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded" })).toEqual({ ok: true, applied: true, status: "completed" });
    expect(await getRun(runId)).toMatchObject({ outcome: "cancelled" });
    expect(await onlyEvent(runId, "run.cancelled")).toMatchObject({ metadata: { stopped: "reported succeeded", outcome: "succeeded" } });
    // The same report again (its answer lost) is a no-op, not a late result.
    expect(await service().complete(runId, 1, { outcome: "succeeded" })).toMatchObject({ ok: false, refusal: "duplicate" });
    expect(await actionsOf(runId)).not.toContain("run.late_result_discarded");
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
  });

  it("a failure reported after the cancel does not retry: the run ends cancelled", async () => {
    const { ws, runId, t } = await runningRun("race-failure");
    await cancel(ws, runId);
    await t.report({ kind: "failure", attempt: 1, reason: "handler.error", retryable: true, message: "boom" });
    expect(await getRun(runId)).toMatchObject({ status: "completed", outcome: "cancelled", attempt: 1 });
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
    expect(await actionsOf(runId)).not.toContain("run.attempt_failed");
  });

  it("a cancel and a success sent at the same moment: one of them wins, the other learns it", async () => {
    for (let i = 0; i < 3; i++) {
      const { ws, runId, t } = await runningRun(`race-same-${i}`);
      const [reported, cancelled] = await Promise.all([t.report({ kind: "result", attempt: 1, outcome: "succeeded" }), cancel(ws, runId)]);
      const run = await getRun(runId);
      expect(reported).toMatchObject({ ok: true, status: "completed" });
      if (cancelled.kind === "terminal") expect(run.outcome).toBe("succeeded");
      else {
        expect(cancelled.kind).toBe("cancelling");
        expect(run.outcome).toBe("cancelled");
      }
      expect(await terminalEvents(runId)).toHaveLength(1);
    }
  });

  it("a cancel racing the tracker's alarm on a silent attempt: the run ends cancelled once, never re-run", async () => {
    const { ws, runId } = await runningRun("race-alarm");
    await ageTracker(runId, DEMO_POLICY.heartbeatTimeoutMs + 1_000);
    const [, answer] = await Promise.all([runAlarm(runId), cancel(ws, runId)]);
    // Either the alarm declared the attempt lost first (queued again: the cancel ends it at once),
    // or the cancel came first (Cancelling: the alarm's loss ends it cancelled).
    expect(["cancelled", "cancelling"]).toContain(answer.kind);
    if (answer.kind === "cancelling") await runAlarm(runId);
    expect(await getRun(runId)).toMatchObject({ status: "completed", outcome: "cancelled", attempt: 1 });
    expect(await terminalEvents(runId)).toEqual(["run.cancelled"]);
    expect(await tracker(runId).claim({ runId, dispatch: 2 })).toMatchObject({ ok: false });
    expect((await actionsOf(runId)).filter((a) => a === "run.attempt_started")).toHaveLength(1);
  });

  it("a cancel racing the sweep's reconciliation of the same running run: exactly one terminal event", async () => {
    for (let i = 0; i < 3; i++) {
      const { ws, runId } = await runningRun(`race-sweep-${i}`);
      const observed = await getRun(runId);
      const [swept, cancelled] = await Promise.all([
        service().reconcile(runId, {
          detector: "sweep",
          reason: "lifecycle.stale_running",
          observed: { status: "running", attempt: 1, deadlineAt: observed.deadlineAt },
          evidence: { test: true },
        }),
        cancel(ws, runId),
      ]);
      const run = await getRun(runId);
      expect(run.status).toBe("completed");
      // The sweep first: failed as stale_running, and the cancel finds it terminal.
      // The cancel first: the sweep's write, fenced on the cancel, re-decides and ends it cancelled.
      if (run.outcome === "failed") {
        expect(run.reasonCode).toBe("lifecycle.stale_running");
        expect(cancelled.kind).toBe("terminal");
      } else {
        expect(run.outcome).toBe("cancelled");
        expect(swept.ok).toBe(true);
      }
      expect(await terminalEvents(runId)).toHaveLength(1);
    }
  });
});
