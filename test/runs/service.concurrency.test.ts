/**
 * Races on one run, made real: a barrier holds each writer's batch() until
 * both have been issued, so both read and decide on the same state before
 * either writes. Only the compare-and-set can then pick the winner, and the
 * contract says: exactly one transition, exactly one transition event.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { RunAnswer, RunService } from "../../src/runs";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { failingD1, writeBarrier } from "../support/d1";
import { T0, eventsOf, eventsOfWorkspace, newRun, parsed, serviceOn, snapshot, storedRow } from "../support/runs";
import type { Diagnostics } from "../../src/runs";

/** Actions that are transitions (one per winning write); `run.late_result_discarded` is not. */
const TRANSITION_ACTIONS = new Set(["run.attempt_started", "run.completed", "run.attempt_failed", "run.failed", "run.attempt_lost", "run.reconciled"]);

async function setup(state: "queued" | "running") {
  const ws = await makeWorkspace("race");
  const clock = manualClock(T0);
  const plain = runService(clock.now);
  const run = await newRun(plain, ws);
  clock.advance(1_000);
  if (state === "running") await plain.claim(run.id, 1);
  clock.advance(1_000);
  const before = await eventsOf(run.id);
  const race = writeBarrier(2);
  return { ws, clock, run, before, race, svc: serviceOn(race.db, clock.now) };
}

/** The events written by the race (after the setup's). */
async function raceEvents(runId: string, setupCount: number) {
  return (await eventsOf(runId)).slice(setupCount);
}

function winnerAndLoser(answers: RunAnswer[]) {
  const winners = answers.filter((a) => a.ok);
  const losers = answers.filter((a) => !a.ok);
  expect(winners, "exactly one writer wins").toHaveLength(1);
  expect(losers).toHaveLength(1);
  const winner = winners[0]!;
  const loser = losers[0]!;
  if (!winner.ok || loser.ok) throw new Error("unreachable");
  return { winner, loser, winnerIndex: answers.indexOf(winner) };
}

describe("two writers, one run: one transition, one event", () => {
  it("complete vs failAttempt (both attempt 1)", async () => {
    const { run, before, race, svc } = await setup("running");
    const answers = await Promise.all([
      svc.complete(run.id, 1, { outcome: "succeeded" }),
      svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: false, error: new Error("crash") }),
    ]);
    // Both wrote against the same read; D1 let one compare-and-set through.
    expect(race.casChanges.toSorted()).toEqual([0, 1]);
    const { winner, loser, winnerIndex } = winnerAndLoser(answers);
    expect(loser.refusal).toBe("terminal");
    const row = await storedRow(run.id);
    expect(row.status).toBe("completed");
    expect(row.outcome).toBe(winner.run.outcome);
    expect(row.outcome).toBe(winnerIndex === 0 ? "succeeded" : "failed");
    const events = await raceEvents(run.id, before.length);
    expect(events.filter((e) => TRANSITION_ACTIONS.has(e.action)).map((e) => e.action)).toEqual([winner.transition.action]);
    // The loser was a result too: recorded, never applied.
    expect(events.filter((e) => e.action === "run.late_result_discarded")).toHaveLength(1);
    expect(events).toHaveLength(2);
  });

  it("sweep reconcile vs tracker reconcile of the same stale queued run", async () => {
    const { run, before, race, svc } = await setup("queued");
    const observed = { status: "queued", attempt: 0 } as const;
    const answers = await Promise.all([
      svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_queued", observed, evidence: { by: "sweep" } }),
      svc.reconcile(run.id, { detector: "tracker_alarm", reason: "lifecycle.stale_queued", observed, evidence: { by: "tracker" } }),
    ]);
    expect(race.casChanges.toSorted()).toEqual([0, 1]);
    const { winner, loser, winnerIndex } = winnerAndLoser(answers);
    expect(loser.refusal).toBe("terminal");
    const detector = winnerIndex === 0 ? "sweep" : "tracker_alarm";
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_queued", reconciled_by: detector });
    expect(winner.run.reconciledBy).toBe(detector);
    // The winner's evidence, not a mix of both.
    expect(parsed<Diagnostics>(row.diagnostics)).toMatchObject({ detectedBy: detector, evidence: { by: detector === "sweep" ? "sweep" : "tracker" } });
    const events = await raceEvents(run.id, before.length);
    expect(events.map((e) => [e.action, e.actor])).toEqual([["run.reconciled", detector === "sweep" ? "system:sweep" : "system:tracker"]]);
  });

  it("sweep stale_running vs tracker heartbeatLost on the last attempt", async () => {
    const ws = await makeWorkspace("race");
    const clock = manualClock(T0);
    const plain = runService(clock.now);
    const run = await newRun(plain, ws);
    // Straight to the last attempt: a redelivery with the final delivery count.
    await plain.claim(run.id, run.maxAttempts);
    const before = await eventsOf(run.id);
    const race = writeBarrier(2);
    const svc = serviceOn(race.db, clock.now);
    const answers = await Promise.all([
      svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: run.maxAttempts }, evidence: {} }),
      svc.heartbeatLost(run.id, run.maxAttempts, {}),
    ]);
    expect(race.casChanges.toSorted()).toEqual([0, 1]);
    const { loser, winnerIndex } = winnerAndLoser(answers);
    expect(loser.refusal).toBe("terminal");
    const row = await storedRow(run.id);
    expect(row).toMatchObject(
      winnerIndex === 0
        ? { reason_code: "lifecycle.stale_running", reconciled_by: "sweep" }
        : { reason_code: "lifecycle.heartbeat_lost", reconciled_by: "tracker_alarm" },
    );
    expect((await raceEvents(run.id, before.length)).map((e) => e.action)).toEqual(["run.reconciled"]);
  });

  it("deadLetter vs complete", async () => {
    const { run, before, race, svc } = await setup("running");
    const answers = await Promise.all([svc.deadLetter(run.id, { messageAttempts: 3 }), svc.complete(run.id, 1, { outcome: "succeeded" })]);
    expect(race.casChanges.toSorted()).toEqual([0, 1]);
    const { winner, loser, winnerIndex } = winnerAndLoser(answers);
    expect(loser.refusal).toBe("terminal");
    const row = await storedRow(run.id);
    expect(row).toMatchObject(
      winnerIndex === 0
        ? { outcome: "failed", reason_code: "queue.max_attempts_exceeded", reconciled_by: "dead_letter" }
        : { outcome: "succeeded", reason_code: null, reconciled_by: null },
    );
    const events = await raceEvents(run.id, before.length);
    expect(events.filter((e) => TRANSITION_ACTIONS.has(e.action)).map((e) => e.action)).toEqual([winner.transition.action]);
    // Only a losing *result* is recorded; a losing dead-letter writes nothing.
    expect(events.filter((e) => e.action === "run.late_result_discarded")).toHaveLength(winnerIndex === 0 ? 1 : 0);
  });

  it("claim 2 vs claim 2 (duplicate delivery during a takeover): one takes over, the other is a duplicate", async () => {
    const { run, before, race, svc } = await setup("running");
    const answers = await Promise.all([svc.claim(run.id, 2), svc.claim(run.id, 2)]);
    expect(race.casChanges.toSorted()).toEqual([0, 1]);
    const { winner, loser } = winnerAndLoser(answers);
    expect(loser.refusal).toBe("duplicate");
    expect(winner.transition.takeover).toBe(true);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "running", attempt: 2 });
    // One takeover recorded in diagnostics, not two.
    expect(parsed<Diagnostics>(row.diagnostics).attempts.map((a) => [a.attempt, a.ended ?? null])).toEqual([
      [1, "fenced (taken over)"],
      [2, null],
    ]);
    const events = await raceEvents(run.id, before.length);
    expect(events.map((e) => [e.action, e.metadata.attempt])).toEqual([["run.attempt_started", 2]]);
  });
});

describe("a failing D1 write leaves nothing half-written", () => {
  async function runningRun() {
    const ws = await makeWorkspace("fail");
    const clock = manualClock(T0);
    const plain = runService(clock.now);
    const run = await newRun(plain, ws);
    clock.advance(1_000);
    await plain.claim(run.id, 1);
    clock.advance(1_000);
    return { ws, clock, run };
  }

  it.each(["before-d1", "mid-batch"] as const)("complete whose batch fails (%s) rejects; row and audit unchanged", async (mode) => {
    const { clock, run } = await runningRun();
    const before = await snapshot(run.id);
    const failing = failingD1(mode);
    const svc: RunService = serviceOn(failing.db, clock.now);
    await expect(svc.complete(run.id, 1, { outcome: "succeeded" })).rejects.toThrow(mode === "before-d1" ? /injected/ : /CHECK constraint/);
    expect(failing.attempts()).toBe(1);
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("reconcile whose batch fails mid-way rejects; the run stays live for the next detector", async () => {
    const { clock, run } = await runningRun();
    const before = await snapshot(run.id);
    const svc = serviceOn(failingD1("mid-batch").db, clock.now);
    await expect(
      svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} }),
    ).rejects.toThrow();
    expect(await snapshot(run.id)).toEqual(before);
    // Still resolvable: the failed write left no trace that would fence the retry.
    const retry = await runService(clock.now).reconcile(run.id, {
      detector: "sweep",
      reason: "lifecycle.stale_running",
      observed: { status: "running", attempt: 1 },
      evidence: {},
    });
    expect(retry.ok).toBe(true);
  });

  it("create whose batch fails mid-way rejects; no run and no run.queued exist", async () => {
    const ws = await makeWorkspace("fail");
    const svc = serviceOn(failingD1("mid-batch").db);
    await expect(svc.create({ workspaceId: ws, type: "demo.work", input: {}, idempotencyKey: "k", initiator: "user:test" })).rejects.toThrow();
    const runs = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(ws).first<{ n: number }>();
    expect(runs?.n).toBe(0);
    expect(await eventsOfWorkspace(ws)).toEqual([]);
  });
});
