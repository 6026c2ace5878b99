/**
 * Zombie attempts (contract sections 1 and 4.1): an attempt that no longer
 * holds the lease — taken over by a newer attempt, or outlived by a
 * reconciliation — is fenced. Its heartbeat is answered "fenced" and aborts
 * its work; its result is recorded as run.late_result_discarded and changes
 * nothing else.
 */
import { describe, expect, it } from "vitest";
import type { Progress } from "../../src/lifecycle";
import { runAttempt } from "../../src/queue/attempt";
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

describe("a zombie attempt reporting late", () => {
  it("after a takeover by a newer attempt: fenced, its result recorded as run.late_result_discarded, the run unchanged", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = tracker(run.id);
    expect(await t.claim({ runId: run.id, attempt: 1 })).toMatchObject({ ok: true, takeover: false });
    expect(await t.claim({ runId: run.id, attempt: 2 })).toMatchObject({ ok: true, takeover: true, run: { attempt: 2 } });
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "running", attempt: 2 });

    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: false, refusal: "fenced" });
    expect(await t.complete({ runId: run.id, attempt: 1, outcome: "succeeded", progress: PROGRESS })).toEqual({
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
    expect(await t.complete({ runId: run.id, attempt: 2, outcome: "succeeded" })).toEqual({ ok: true, status: "completed" });
    const after = await getRun(run.id);
    expect(after).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, reasonCode: null, reconciledBy: null });
    expect(after.diagnostics.attempts.map((a) => [a.attempt, a.ended])).toEqual([
      [1, "fenced (taken over)"],
      [2, "succeeded"],
    ]);
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_started",
      "run.late_result_discarded",
      "run.completed",
    ]);
    const starts = (await eventsOf(run.id)).filter((e) => e.action === "run.attempt_started");
    expect(starts[1]!.metadata).toMatchObject({ attempt: 2, takeover: true, fencedAttempt: 1 });
  });

  it("after the tracker reconciled the run: terminal, recorded as run.late_result_discarded, the run unchanged", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = tracker(run.id);
    const last = DEMO_POLICY.maxAttempts;
    expect(await t.claim({ runId: run.id, attempt: last })).toMatchObject({ ok: true });
    await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs + 1_000);
    await runAlarm(run.id);
    const before = await snapshot(run.id);
    expect(before.row).toMatchObject({ status: "completed", reason_code: "lifecycle.heartbeat_lost", reconciled_by: "tracker_alarm" });

    expect(await t.heartbeat({ attempt: last })).toEqual({ ok: false, refusal: "terminal" });
    expect(await t.fail({ runId: run.id, attempt: last, reason: "handler.error", retryable: true, message: "boom (too late)" })).toEqual({
      ok: false,
      refusal: "terminal",
      status: "completed",
    });
    expect(await t.complete({ runId: run.id, attempt: last, outcome: "succeeded", progress: PROGRESS })).toEqual({
      ok: false,
      refusal: "terminal",
      status: "completed",
    });

    expect((await snapshot(run.id)).row).toEqual(before.row);
    const late = (await eventsOf(run.id)).filter((e) => e.action === "run.late_result_discarded");
    expect(late.map((e) => e.metadata)).toEqual([
      { attempt: last, refusal: "terminal", reported: { reason: "handler.error", error: "boom (too late)" } },
      { attempt: last, refusal: "terminal", reported: { outcome: "succeeded", message: null, progress: PROGRESS } },
    ]);
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.reconciled",
      "run.late_result_discarded",
      "run.late_result_discarded",
    ]);
  });

  it("after the sweep reconciled the run behind the tracker's back: the tracker learns it from D1 and discards the result", async () => {
    const ws = await makeWorkspace("zombie");
    const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
    const t = tracker(run.id);
    expect(await t.claim({ runId: run.id, attempt: 1 })).toMatchObject({ ok: true });
    const sweep = service();
    const reconciled = await sweep.reconcile(run.id, {
      detector: "sweep",
      reason: "lifecycle.stale_running",
      observed: { status: "running", attempt: 1 },
      evidence: { test: true },
    });
    expect(reconciled.ok).toBe(true);
    expect(await trackerState(run.id)).toMatchObject({ status: "running", attempt: 1 });
    const before = await snapshot(run.id);

    expect(await t.complete({ runId: run.id, attempt: 1, outcome: "partially_succeeded", message: "late" })).toEqual({
      ok: false,
      refusal: "terminal",
      status: "completed",
    });

    expect((await snapshot(run.id)).row).toEqual(before.row);
    expect(await onlyEvent(run.id, "run.late_result_discarded")).toMatchObject({
      metadata: { attempt: 1, refusal: "terminal", reported: { outcome: "partially_succeeded", message: "late" } },
    });
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 1 });
    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reasonCode: "lifecycle.stale_running",
      reconciledBy: "sweep",
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.reconciled", "run.late_result_discarded"]);
  });
});

describe("a zombie attempt still running", () => {
  it("is fenced at its next heartbeat through the consumer: the work is aborted, nothing is reported, and only the new attempt completes", async () => {
    const ws = await makeWorkspace("zombie");
    // 5 s of work if nothing stops it; the fence must end it at the next heartbeat (~1 s).
    const { run, message } = await createRun(ws, { steps: 50, stepMs: 100 });
    let takeover: Promise<unknown> | undefined;
    const spy = spyingEnv((c) => {
      if (c.method === "claim" && c.answer.ok) takeover = tracker(run.id).claim({ runId: run.id, attempt: 2 });
    });

    const started = Date.now();
    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1 }], spy.env);
    const elapsed = Date.now() - started;
    expect(await takeover).toMatchObject({ ok: true, takeover: true });

    expectAcked(first);
    expect(elapsed).toBeLessThan(3_000);
    const heartbeats = spy.calls.filter((c) => c.method === "heartbeat");
    expect(heartbeats.at(-1)).toEqual({ method: "heartbeat", attempt: 1, answer: { ok: false, refusal: "fenced" } });
    expect(spy.calls.some((c) => c.method === "complete" || c.method === "fail")).toBe(false);
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt: 2 });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_started"]);

    const t = tracker(run.id);
    expect(await t.complete({ runId: run.id, attempt: 1, outcome: "succeeded" })).toMatchObject({ ok: false, refusal: "fenced" });
    expect(await t.complete({ runId: run.id, attempt: 2, outcome: "succeeded", progress: PROGRESS })).toEqual({ ok: true, status: "completed" });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 2, progress: PROGRESS });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_started",
      "run.late_result_discarded",
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
      progress: { total: 0, processed: 0, succeeded: 0, failed: 0 },
    };
    const replies = [{ ok: true } as const, { ok: false, refusal: "fenced" } as const];
    const sent: unknown[] = [];
    let seen: { aborted: boolean; reason: unknown } | undefined;

    const end = await runAttempt(
      {
        ok: true,
        input: {},
        timeoutMs: 5_000,
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
      {
        async heartbeat(req) {
          sent.push(req);
          return replies.shift() ?? { ok: false, refusal: "fenced" };
        },
      },
      { heartbeatIntervalMs: 20 },
    );

    expect(end).toEqual({ kind: "fenced", refusal: "fenced" });
    expect(seen?.aborted).toBe(true);
    expect(seen?.reason).toMatchObject({ name: "AttemptFenced" });
    expect(sent).toHaveLength(2);
    expect(sent[0]).toEqual({ attempt: 1, progress: { total: 2, processed: 1, succeeded: 1, failed: 0 } });
  });
});
