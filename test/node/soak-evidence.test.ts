/**
 * The soak's "verdicts contradicted by evidence" (bench/lib/evidence.ts): each
 * rule flags the wrong verdict it exists for, and stays quiet when a kill, a
 * crash or a D1 fault explains the verdict.
 */
import { describe, expect, it } from "vitest";
import { contradictions, type Evidence, type RunFacts, type TrailEvent } from "../../bench/lib/evidence";

const S = 1_000;
const NONE: Evidence = { kills: [], crashes: [], d1FaultRuns: new Set() };

const ev = (action: string, at: number, lateOutcome: string | null = null): TrailEvent => ({ action, at, lateOutcome });

function run(over: Partial<RunFacts> & Pick<RunFacts, "trail">): RunFacts {
  return {
    id: "run_01AAAAAAAAAAAAAAAAAAAAAAAA",
    neverDies: true,
    succeeds: true,
    verdict: { status: "completed", outcome: "succeeded", reasonCode: null },
    ...over,
  };
}

describe("verdicts contradicted by evidence", () => {
  it("a healthy run that succeeded contradicts nothing", () => {
    const r = run({ trail: [ev("run.queued", 0), ev("run.attempt_started", 2 * S), ev("run.completed", 3 * S)] });
    expect(contradictions(r, NONE)).toEqual([]);
  });

  describe("stale_queued", () => {
    const stale = (trail: TrailEvent[]) =>
      run({ verdict: { status: "completed", outcome: "failed", reasonCode: "lifecycle.stale_queued" }, trail });

    it("is contradicted when no kill happened since its dispatch was last sent (it was held, not lost)", () => {
      const r = stale([ev("run.queued", 0), ev("run.attempt_started", 2 * S), ev("run.attempt_failed", 3 * S), ev("run.reconciled", 125 * S)]);
      expect(contradictions(r, NONE)).toContain("stale_queued_while_dispatch_held");
      // A kill before that send does not explain it either: the send came after the runtime was back.
      expect(contradictions(r, { ...NONE, kills: [{ at: 2.5 * S }] })).toContain("stale_queued_while_dispatch_held");
    });

    it("is explained by a kill after the last send (the local queue lost the message), unless it was re-sent after the kill", () => {
      const r = stale([ev("run.queued", 0), ev("run.reconciled", 125 * S)]);
      const kill = { ...NONE, kills: [{ at: 10 * S }] };
      expect(contradictions(r, kill)).toEqual([]);
      const resent = stale([ev("run.queued", 0), ev("run.redispatched", 60 * S), ev("run.reconciled", 125 * S)]);
      expect(contradictions(resent, kill)).toContain("stale_queued_while_dispatch_held");
    });
  });

  it("a late success after a failure verdict is always contradicted; a late failure is not", () => {
    const trail = (outcome: string) => [
      ev("run.queued", 0),
      ev("run.attempt_started", 1 * S),
      ev("run.reconciled", 7 * S),
      ev("run.late_result_discarded", 9 * S, outcome),
    ];
    const failed = { status: "completed", outcome: "failed", reasonCode: "lifecycle.heartbeat_lost" };
    const kill = { ...NONE, kills: [{ at: 2 * S }] };
    expect(contradictions(run({ verdict: failed, trail: trail("succeeded") }), kill)).toContain("late_success_after_failure");
    expect(contradictions(run({ verdict: failed, trail: trail("failed") }), kill)).toEqual([]);
  });

  describe("a lost attempt of a behaviour that never dies", () => {
    const lostOnce = [
      ev("run.queued", 0),
      ev("run.attempt_started", 1 * S),
      ev("run.attempt_lost", 8 * S),
      ev("run.attempt_started", 9 * S),
      ev("run.completed", 10 * S),
    ];

    it("is contradicted with no kill or crash during it", () => {
      expect(contradictions(run({ trail: lostOnce }), NONE)).toEqual(["loss_without_fault"]);
      // A kill after the attempt was declared lost explains nothing.
      expect(contradictions(run({ trail: lostOnce }), { ...NONE, kills: [{ at: 8.5 * S }] })).toEqual(["loss_without_fault"]);
      // Nor does a D1 fault: the tracker keeps heartbeats whatever D1 does.
      expect(contradictions(run({ trail: lostOnce }), { ...NONE, d1FaultRuns: new Set(["run_01AAAAAAAAAAAAAAAAAAAAAAAA"]) })).toEqual(["loss_without_fault"]);
    });

    it("is explained by a kill during the attempt or a crash in its batch", () => {
      expect(contradictions(run({ trail: lostOnce }), { ...NONE, kills: [{ at: 3 * S }] })).toEqual([]);
      expect(contradictions(run({ trail: lostOnce }), { ...NONE, crashes: [1.2 * S] })).toEqual([]);
    });

    it("is expected of a behaviour that dies", () => {
      expect(contradictions(run({ neverDies: false, trail: lostOnce }), NONE)).toEqual([]);
    });

    it("covers the last attempt reconciled as heartbeat_lost too", () => {
      const r = run({
        verdict: { status: "completed", outcome: "failed", reasonCode: "lifecycle.heartbeat_lost" },
        trail: [ev("run.queued", 0), ev("run.attempt_started", 1 * S), ev("run.reconciled", 7 * S)],
      });
      expect(contradictions({ ...r, succeeds: false }, NONE)).toEqual(["loss_without_fault"]);
      expect(contradictions(r, { ...NONE, crashes: [0.5 * S] })).toEqual([]);
    });
  });

  describe("a failure verdict for a behaviour that succeeds", () => {
    const failed = run({
      verdict: { status: "completed", outcome: "failed", reasonCode: "queue.max_attempts_exceeded" },
      trail: [ev("run.queued", 0), ev("run.attempt_started", 1 * S), ev("run.reconciled", 30 * S)],
    });

    it("is contradicted when no fault touched the run", () => {
      expect(contradictions(failed, NONE)).toEqual(["failure_without_fault"]);
      expect(contradictions(failed, { ...NONE, d1FaultRuns: new Set(["run_01BBBBBBBBBBBBBBBBBBBBBBBB"]) })).toEqual(["failure_without_fault"]);
    });

    it("is explained by a D1 fault naming it, a kill during its life or a crash during an attempt", () => {
      expect(contradictions(failed, { ...NONE, d1FaultRuns: new Set([failed.id]) })).toEqual([]);
      expect(contradictions(failed, { ...NONE, kills: [{ at: 20 * S }] })).toEqual([]);
      expect(contradictions(failed, { ...NONE, crashes: [2 * S] })).toEqual([]);
    });

    it("is the behaviour's own verdict for one that fails", () => {
      expect(contradictions({ ...failed, succeeds: false }, NONE)).toEqual([]);
    });
  });

  it("a run that is not terminal is judged by the other checks, not this one", () => {
    const r = run({ verdict: { status: "queued", outcome: "pending", reasonCode: null }, trail: [ev("run.queued", 0)] });
    expect(contradictions(r, NONE)).toEqual([]);
  });
});
