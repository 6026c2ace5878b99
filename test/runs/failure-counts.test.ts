/**
 * The per-hour failure counters the admin's failure tiles read
 * (src/runs/failure-counts.ts): a run that fails is counted once, in the
 * hour it was created in, by the batch that fails it; a reconciled failure
 * also in `reconciled`; a run that succeeds or goes back to the queue is not
 * counted; and two writers racing to fail the same run count it once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { HOUR_MS, hourStart } from "../../src/runs";
import { failingD1, writeBarrier } from "../support/d1";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { newRun, serviceOn, T0 } from "../support/runs";

/** The counters of a workspace, by hour. */
async function counters(ws: string): Promise<Array<{ hour_start: number; failed: number; reconciled: number }>> {
  const res = await env.DB.prepare("SELECT hour_start, failed, reconciled FROM run_failure_counts WHERE workspace_id = ? ORDER BY hour_start")
    .bind(ws)
    .all<{ hour_start: number; failed: number; reconciled: number }>();
  return res.results;
}

describe("failure counters", () => {
  it("count a failed run once, in its creation hour, and a reconciled one as reconciled too", async () => {
    const ws = await makeWorkspace("fc");
    // Created 10 minutes before the top of an hour, failed after it: counted in the creation hour.
    const clock = manualClock(hourStart(T0) + 5 * HOUR_MS - 600_000);
    const svc = runService(clock.now);
    const failed = await newRun(svc, ws);
    const succeeded = await newRun(svc, ws);
    const retried = await newRun(svc, ws);
    const reconciled = await newRun(svc, ws);
    const created = hourStart(clock.now());
    clock.advance(20 * 60_000);
    for (const r of [failed, succeeded, retried, reconciled]) expect((await svc.claim(r.id, 1)).ok).toBe(true);
    expect((await svc.failAttempt(failed.id, 1, { reason: "handler.error", retryable: false, error: new Error("boom") })).ok).toBe(true);
    expect((await svc.complete(succeeded.id, 1, { outcome: "succeeded" })).ok).toBe(true);
    // Back to the queue: not a failure (yet).
    expect((await svc.failAttempt(retried.id, 1, { reason: "handler.error", retryable: true, error: new Error("again") })).ok).toBe(true);
    expect(
      (await svc.reconcile(reconciled.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} })).ok,
    ).toBe(true);
    // A refused write (the run is terminal) counts nothing more.
    expect((await svc.complete(failed.id, 1, { outcome: "failed" })).ok).toBe(false);
    expect(await counters(ws)).toEqual([{ hour_start: created, failed: 2, reconciled: 1 }]);
  });

  it("two writers failing the same run at once: one wins, the run is counted once", async () => {
    const ws = await makeWorkspace("fc-race");
    const clock = manualClock(T0);
    const run = await newRun(runService(clock.now), ws);
    await runService(clock.now).claim(run.id, 1);
    clock.advance(1_000);
    const race = writeBarrier(2);
    const svc = serviceOn(race.db, clock.now);
    const answers = await Promise.all([
      svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: false, error: new Error("crash") }),
      svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} }),
    ]);
    expect(answers.filter((a) => a.ok)).toHaveLength(1);
    const [row] = await counters(ws);
    expect(row?.failed).toBe(1);
    // Reconciled exactly when the reconciliation was the winner.
    expect(row?.reconciled).toBe(answers[1]!.ok ? 1 : 0);
  });

  it("a failing batch that D1 rolls back counts nothing", async () => {
    const ws = await makeWorkspace("fc-rollback");
    const clock = manualClock(T0);
    const run = await newRun(runService(clock.now), ws);
    await runService(clock.now).claim(run.id, 1);
    const broken = failingD1("mid-batch");
    await expect(
      serviceOn(broken.db, clock.now).failAttempt(run.id, 1, { reason: "handler.error", retryable: false, error: new Error("x") }),
    ).rejects.toThrow();
    expect(await counters(ws)).toEqual([]);
  });
});
