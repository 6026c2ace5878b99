/**
 * Each typed refusal through RunService on real D1. A refusal changes nothing:
 * the stored row stays byte-for-byte the same, and the only thing ever
 * written is a `run.late_result_discarded` event for a refused result.
 */
import { describe, expect, it } from "vitest";
import type { RunAnswer, RunService } from "../../src/runs";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { DEMO } from "../support/demo";
import { T0, eventsOf, newRun, snapshot, storedRow } from "../support/runs";

async function setup() {
  const ws = await makeWorkspace("refusals");
  const clock = manualClock(T0);
  return { ws, clock, svc: runService(clock.now) };
}

/** A run that attempt 1 completed successfully. */
async function completedRun(svc: RunService, ws: string, clock: ReturnType<typeof manualClock>) {
  const run = await newRun(svc, ws);
  clock.advance(1_000);
  await svc.claim(run.id, 1);
  clock.advance(1_000);
  await svc.complete(run.id, 1, { outcome: "succeeded" });
  clock.advance(60_000);
  return run;
}

/** A run where attempt 2 took over from a still-running attempt 1. */
async function takenOverRun(svc: RunService, ws: string, clock: ReturnType<typeof manualClock>) {
  const run = await newRun(svc, ws);
  clock.advance(1_000);
  await svc.claim(run.id, 1);
  clock.advance(1_000);
  await svc.claim(run.id, 2);
  clock.advance(10_000);
  return run;
}

function expectRefusal(answer: RunAnswer | Awaited<ReturnType<RunService["heartbeat"]>>, refusal: string) {
  expect(answer).toMatchObject({ ok: false, refusal });
}

describe("terminal: a completed run refuses everything and stays byte-for-byte the same", () => {
  it.each<[string, (svc: RunService, id: string) => Promise<RunAnswer | Awaited<ReturnType<RunService["heartbeat"]>>>]>([
    ["claim", (svc, id) => svc.claim(id, 2)],
    ["heartbeat (forced)", (svc, id) => svc.heartbeat({ runId: id, type: DEMO, attempt: 1, force: true, progress: { total: 9, processed: 9, succeeded: 9, failed: 0 } })],
    ["heartbeatLost", (svc, id) => svc.heartbeatLost(id, 1, { lastHeartbeatAt: 0 })],
    ["reconcile", (svc, id) => svc.reconcile(id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} })],
    ["deadLetter", (svc, id) => svc.deadLetter(id, { messageAttempts: 3 })],
  ])("%s → terminal, no row change, no event", async (_name, act) => {
    const { ws, clock, svc } = await setup();
    const run = await completedRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await act(svc, run.id), "terminal");
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("a late complete writes exactly one run.late_result_discarded with what it tried to report, and nothing else", async () => {
    const { ws, clock, svc } = await setup();
    const run = await completedRun(svc, ws, clock);
    const before = await snapshot(run.id);
    const progress = { total: 3, processed: 1, succeeded: 0, failed: 1 };
    const answer = await svc.complete(run.id, 1, { outcome: "failed", message: "late failure", progress });
    expectRefusal(answer, "terminal");
    const after = await snapshot(run.id);
    expect(after.row).toEqual(before.row);
    expect(after.events.slice(0, -1)).toEqual(before.events);
    expect(after.events).toHaveLength(before.events.length + 1);
    expect(after.events.at(-1)).toMatchObject({
      action: "run.late_result_discarded",
      actor: "system:consumer",
      createdAt: clock.now(),
      metadata: { attempt: 1, refusal: "terminal", reported: { outcome: "failed", message: "late failure", progress } },
    });
  });

  it("a late failAttempt is recorded the same way, with its reason and error", async () => {
    const { ws, clock, svc } = await setup();
    const run = await completedRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("too late") }), "terminal");
    const after = await snapshot(run.id);
    expect(after.row).toEqual(before.row);
    expect(after.events.slice(before.events.length)).toMatchObject([
      { action: "run.late_result_discarded", metadata: { attempt: 1, refusal: "terminal", reported: { reason: "handler.error", error: "too late" } } },
    ]);
  });
});

describe("fenced: an attempt that lost the lease, or a stale observation", () => {
  it("a result from attempt 1 after attempt 2 took over is discarded and recorded as fenced", async () => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.complete(run.id, 1, { outcome: "succeeded" }), "fenced");
    const after = await snapshot(run.id);
    expect(after.row).toEqual(before.row);
    expect(after.events.slice(before.events.length)).toMatchObject([
      { action: "run.late_result_discarded", metadata: { attempt: 1, refusal: "fenced", reported: { outcome: "succeeded" } } },
    ]);
  });

  it("a failure from attempt 1 after attempt 2 took over does not requeue the run", async () => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("old attempt") }), "fenced");
    const after = await snapshot(run.id);
    expect(after.row).toEqual(before.row);
    expect(after.events.slice(before.events.length).map((e) => e.action)).toEqual(["run.late_result_discarded"]);
  });

  it("a heartbeat (even forced) from attempt 1 after attempt 2 took over changes nothing", async () => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, force: true }), "fenced");
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("heartbeatLost for attempt 1 after attempt 2 took over does not requeue attempt 2", async () => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.heartbeatLost(run.id, 1, {}), "fenced");
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("a claim of an older attempt than the lease holder's is fenced", async () => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    expectRefusal(await svc.claim(run.id, 1), "fenced");
    expect(await snapshot(run.id)).toEqual(before);
  });

  it.each([
    ["queued at attempt 0, now running", { status: "queued", attempt: 0 }],
    ["running attempt 1, now running attempt 2", { status: "running", attempt: 1 }],
  ] as const)("reconcile with a stale observation (%s) is fenced", async (_name, observed) => {
    const { ws, clock, svc } = await setup();
    const run = await takenOverRun(svc, ws, clock);
    const before = await snapshot(run.id);
    const reason = observed.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running";
    const answer = await svc.reconcile(run.id, { detector: "sweep", reason, observed, evidence: {} });
    expectRefusal(answer, "fenced");
    expect(await snapshot(run.id)).toEqual(before);
  });
});

describe("duplicate and exhausted claims", () => {
  it("claiming the same attempt twice: the second is a duplicate, one run.attempt_started", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    clock.advance(1_000);
    expect((await svc.claim(run.id, 1)).ok).toBe(true);
    const before = await snapshot(run.id);
    clock.advance(1_000);
    expectRefusal(await svc.claim(run.id, 1), "duplicate");
    expect(await snapshot(run.id)).toEqual(before);
    expect((await eventsOf(run.id)).filter((e) => e.action === "run.attempt_started")).toHaveLength(1);
  });

  it("a claim beyond max_attempts is exhausted", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const before = await snapshot(run.id);
    expectRefusal(await svc.claim(run.id, run.maxAttempts + 1), "exhausted");
    expect(await snapshot(run.id)).toEqual(before);
  });
});

describe("not_found and workspace scoping", () => {
  it.each<[string, (svc: RunService, id: string) => Promise<RunAnswer | Awaited<ReturnType<RunService["heartbeat"]>>>]>([
    ["claim", (svc, id) => svc.claim(id, 1)],
    ["heartbeat", (svc, id) => svc.heartbeat({ runId: id, type: DEMO, attempt: 1 })],
    ["complete", (svc, id) => svc.complete(id, 1, { outcome: "succeeded" })],
    ["failAttempt", (svc, id) => svc.failAttempt(id, 1, { reason: "handler.error", retryable: false, error: "x" })],
    ["heartbeatLost", (svc, id) => svc.heartbeatLost(id, 1, {})],
    ["reconcile", (svc, id) => svc.reconcile(id, { detector: "sweep", reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 }, evidence: {} })],
    ["deadLetter", (svc, id) => svc.deadLetter(id, {})],
  ])("%s on an unknown id → not_found, nothing written", async (_name, act) => {
    const { svc } = await setup();
    const id = `run_UNKNOWN${crypto.randomUUID().slice(0, 8)}`;
    expect(await act(svc, id)).toEqual({ ok: false, refusal: "not_found", run: null });
    expect(await eventsOf(id)).toEqual([]);
  });

  it("get() from another workspace does not see the run; its own workspace does", async () => {
    const { ws, svc } = await setup();
    const other = await makeWorkspace("other");
    const run = await newRun(svc, ws);
    expect(await svc.get(other, run.id)).toBeNull();
    expect((await svc.get(ws, run.id))?.id).toBe(run.id);
    expect((await storedRow(run.id)).workspace_id).toBe(ws);
  });
});
