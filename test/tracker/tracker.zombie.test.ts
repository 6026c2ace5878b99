/**
 * Zombie attempts (contract sections 1 and 4): an attempt that no longer
 * holds the lease — declared lost and followed by a newer attempt, or outlived
 * by a reconciliation — is fenced. Its heartbeat is answered "fenced" and aborts
 * its work; its result is recorded as run.late_result_discarded and changes
 * nothing else.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Progress } from "../../src/lifecycle";
import { runAttempt, startHeartbeats } from "../../src/queue/attempt";
import type { RunTicket } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { eventsOf, onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  createRun,
  deliver,
  expectAcked,
  getRun,
  runAlarm,
  service,
  spyingEnv,
  tracker,
  trackerState,
} from "../support/execution";

const PROGRESS: Progress = { total: 5, processed: 5, succeeded: 5, failed: 0 };
const SILENT_MS = DEMO_POLICY.heartbeatTimeoutMs + 1_000;

/** Attempt 1 claimed, then declared lost; attempt 2 claimed from the new dispatch. */
async function lostThenRetaken(runId: string) {
  const t = tracker(runId);
  expect(await t.claim({ runId, dispatch: 1 })).toMatchObject({ ok: true, run: { attempt: 1 } });
  await ageTracker(runId, SILENT_MS);
  await runAlarm(runId);
  expect(await t.claim({ runId, dispatch: 2 })).toMatchObject({ ok: true, run: { attempt: 2, dispatch: 2 } });
  return t;
}

describe("a zombie attempt reporting late", () => {
  it("after it was declared lost and attempt 2 started: fenced, its result recorded as run.late_result_discarded, the run unchanged", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = await lostThenRetaken(run.id);
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "running", attempt: 2 });

    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: false, refusal: "fenced" });
    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded", progress: PROGRESS })).toEqual({
      ok: false,
      refusal: "fenced",
      status: "running",
    });

    expect(await snapshot(run.id).then((s) => s.row)).toEqual(before.row);
    const late = await onlyEvent(run.id, "run.late_result_discarded");
    expect(late).toMatchObject({
      actor: "system:consumer",
      metadata: { attempt: 1, refusal: "fenced", reported: { outcome: "succeeded", message: null, progress: PROGRESS } },
    });
    expect(await trackerState(run.id)).toMatchObject({ status: "running", attempt: 2 });

    // The lease holder is unaffected and completes normally.
    expect(await t.report({ kind: "result", attempt: 2, outcome: "succeeded" })).toEqual({ ok: true, applied: true, status: "completed" });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, reasonCode: null, reconciledBy: null });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.late_result_discarded",
      "run.completed",
    ]);
  });

  it("a zombie's failure report is recorded and discarded the same way, and does not re-queue the run", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = await lostThenRetaken(run.id);
    const before = await snapshot(run.id);

    expect(await t.report({ kind: "failure", attempt: 1, reason: "handler.error", retryable: true, message: "late boom" })).toMatchObject({
      ok: false,
      refusal: "fenced",
    });
    expect(await snapshot(run.id).then((s) => s.row)).toEqual(before.row);
    expect(await onlyEvent(run.id, "run.late_result_discarded")).toMatchObject({ metadata: { attempt: 1, reported: { reason: "handler.error", error: "late boom" } } });
    expect(await trackerState(run.id)).toMatchObject({ status: "running", attempt: 2, dispatch: { n: 2, claimed: true } });
    await t.report({ kind: "result", attempt: 2, outcome: "succeeded" });
  });

  it("after a reconciliation in D1 the tracker had not seen: the report is refused as late and the tracker follows D1", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = tracker(run.id);
    expect(await t.claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const d1 = await getRun(run.id);
    // The sweep decided through D1 alone (its tracker did not answer in time).
    const swept = await service().reconcile(run.id, {
      detector: "sweep",
      reason: "lifecycle.stale_running",
      observed: { status: "running", attempt: 1, deadlineAt: d1.deadlineAt },
      evidence: { test: true },
    });
    expect(swept.ok).toBe(true);
    const before = await snapshot(run.id);

    expect(await t.report({ kind: "result", attempt: 1, outcome: "succeeded", progress: PROGRESS })).toEqual({
      ok: false,
      refusal: "terminal",
      status: "completed",
    });
    expect(await snapshot(run.id).then((s) => s.row)).toEqual(before.row);
    expect(await onlyEvent(run.id, "run.late_result_discarded")).toMatchObject({ metadata: { attempt: 1, refusal: "terminal" } });
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", pending: null });
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: false, refusal: "terminal" });
  });
});

describe("a zombie attempt still running", () => {
  // Generous deadline: a fence that failed would let the 60 s input run on and time the test out.
  it("is fenced at its next heartbeat through the consumer: the work is aborted and nothing is reported", { timeout: 30_000 }, async () => {
    const ws = await makeWorkspace("zombie");
    const { run, message } = await createRun(ws, { steps: 600, stepMs: 100 });
    let lost: Promise<unknown> | undefined;
    const spy = spyingEnv((c) => {
      if (c.method === "claim" && c.answer.ok) {
        lost = ageTracker(run.id, SILENT_MS)
          .then(() => runAlarm(run.id))
          .then(async (): Promise<unknown> => await tracker(run.id).claim({ runId: run.id, dispatch: 2 }));
      }
    });

    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1 }], spy.env);
    expect(await lost).toMatchObject({ ok: true, run: { attempt: 2 } });

    expectAcked(first);
    const heartbeats = spy.calls.filter((c) => c.method === "heartbeat");
    expect(heartbeats.at(-1)).toEqual({ method: "heartbeat", attempt: 1, answer: { ok: false, refusal: "fenced" } });
    expect(spy.calls.some((c) => c.method === "report")).toBe(false);
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt: 2 });

    const t = tracker(run.id);
    expect(await t.report({ kind: "result", attempt: 2, outcome: "succeeded", progress: PROGRESS })).toEqual({ ok: true, applied: true, status: "completed" });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, progress: PROGRESS });
    expect(await eventsOf(run.id).then((e) => e.map((x) => x.action))).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_lost",
      "run.attempt_started",
      "run.completed",
    ]);
  });

  it("runAttempt fires the handler's AbortSignal when a heartbeat is answered fenced", async () => {
    const ticket: RunTicket = {
      runId: "run_01J0000000000000000000000Z",
      workspaceId: "ws_unit",
      type: "demo.work",
      inputJson: "{}",
      attempt: 1,
      maxAttempts: 3,
      dispatch: 1,
      progress: { total: 0, processed: 0, succeeded: 0, failed: 0 },
    };
    const replies = [{ ok: true } as const, { ok: false, refusal: "fenced" } as const];
    const sent: unknown[] = [];
    let seen: { aborted: boolean; reason: unknown } | undefined;
    const beats = startHeartbeats(
      ticket,
      {
        async heartbeat(req) {
          sent.push(req);
          return replies.shift() ?? { ok: false, refusal: "fenced" };
        },
      },
      { heartbeatIntervalMs: 20 },
    );

    const end = await runAttempt(
      {
        ok: true,
        input: {},
        timeoutMs: 60_000,
        run: (ctx) =>
          new Promise((resolve) => {
            ctx.reportProgress({ total: 2, processed: 1, succeeded: 1, failed: 0 });
            ctx.signal.addEventListener("abort", () => {
              seen = { aborted: ctx.signal.aborted, reason: ctx.signal.reason };
              resolve({ outcome: "succeeded" });
            });
          }),
      },
      ticket,
      beats,
      env,
    );
    beats.stop();

    expect(end).toEqual({ kind: "fenced", refusal: "fenced" });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toMatchObject({ name: "AttemptFenced" });
    expect(sent).toHaveLength(2);
    expect(sent[0]).toEqual({ attempt: 1, progress: { total: 2, processed: 1, succeeded: 1, failed: 0 } });
  });
});
