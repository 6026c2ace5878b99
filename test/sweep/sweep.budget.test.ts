/**
 * The sweep works in bounded batches within a time budget, oldest deadline
 * first, and one run's failure does not stop the others: what it could not do
 * stays overdue for the next sweep.
 */
import { beforeEach, describe, expect, it } from "vitest";
import type { SweepTracker } from "../../src/sweep/sweep";
import { initialTrackerState, type TrackerStatus } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { failingWritesFor } from "../support/d1";
import {
  actionsOf,
  capturingErrors,
  createQueued,
  drainOverdue,
  GRACE_MS,
  setDeadline,
  storedRow,
  sweep,
  unableTracker,
} from "../support/sweep";

beforeEach(drainOverdue);

const BUDGET_MS = 1_000;

/** `n` overdue queued runs with distinct deadlines, assigned in an order unrelated to creation; returns ids oldest deadline first. */
async function overdueRuns(ws: string, n: number, now: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await createQueued(ws)).id);
  // Deadline rank of the i-th created run: a fixed permutation (7 is coprime with 30 and 6).
  const rank = (i: number) => (i * 7 + 3) % n;
  const byDeadline: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const r = rank(i);
    await setDeadline(ids[i]!, now - GRACE_MS - 60_000 - (n - r) * 1_000); // rank 0 = oldest
    byDeadline[r] = ids[i]!;
  }
  expect(new Set(byDeadline).size).toBe(n);
  expect(byDeadline).not.toEqual(ids);
  return byDeadline;
}

/**
 * A clock frozen at `start` that jumps past the budget once the tracker has
 * been asked about `after` runs, and a tracker that cannot act (so every
 * examined run is reconciled) recording the order it was asked in.
 */
function budgetScenario(start: number, after: number) {
  let jumped = false;
  const asked: string[] = [];
  const unable = unableTracker("rejects");
  const tracker = (runId: string): SweepTracker => {
    const inner = unable.tracker(runId);
    return {
      status() {
        asked.push(runId);
        if (asked.length === after) jumped = true;
        return inner.status();
      },
      refresh: () => inner.refresh(),
      track: (req) => inner.track(req),
    };
  };
  return { clock: () => (jumped ? start + BUDGET_MS + 1 : start), tracker, asked };
}

const statusOf = async (id: string) => (await storedRow(id)).status;

describe("bounded batches and time budget", () => {
  it("30 overdue, batches of 10, budget passed after the first batch: stops by budget having examined 10; the next sweep takes the rest, oldest deadline first", async () => {
    const ws = await makeWorkspace("budget");
    const now = Date.now();
    const order = await overdueRuns(ws, 30, now);

    const first = budgetScenario(now, 10);
    const r1 = await sweep({ batchSize: 10, budgetMs: BUDGET_MS, clock: first.clock, tracker: first.tracker });
    expect(r1).toMatchObject({ stoppedBy: "budget", examined: 10, batches: 1, reconciled: { "lifecycle.stale_queued": 10 }, failed: 0 });
    expect(first.asked).toEqual(order.slice(0, 10));
    for (const id of order.slice(0, 10)) expect(await statusOf(id)).toBe("completed");
    for (const id of order.slice(10)) expect(await statusOf(id)).toBe("queued");

    const second = budgetScenario(Date.now(), Number.POSITIVE_INFINITY);
    const r2 = await sweep({ batchSize: 10, budgetMs: BUDGET_MS, clock: second.clock, tracker: second.tracker });
    // Two full batches, then an empty read that says the index is drained.
    expect(r2).toMatchObject({ stoppedBy: "drained", examined: 20, batches: 3, reconciled: { "lifecycle.stale_queued": 20 }, failed: 0 });
    expect(second.asked).toEqual(order.slice(10));
    for (const id of order) expect(await actionsOf(id)).toEqual(["run.queued", "run.reconciled"]);
  }, 20_000);

  it("a budget that runs out part-way through a short batch reports budget, not drained", async () => {
    const ws = await makeWorkspace("budget-mid");
    const now = Date.now();
    const order = await overdueRuns(ws, 6, now);
    const s = budgetScenario(now, 2);

    const report = await sweep({ batchSize: 10, budgetMs: BUDGET_MS, concurrency: 1, clock: s.clock, tracker: s.tracker });
    expect(report).toMatchObject({ examined: 2, batches: 1, reconciled: { "lifecycle.stale_queued": 2 } });
    // Four overdue runs were left for the next sweep: the sweep did not drain.
    expect(report.stoppedBy).toBe("budget");
    for (const id of order.slice(2)) expect(await statusOf(id)).toBe("queued");

    expect(await sweep({ tracker: unableTracker("rejects").tracker })).toMatchObject({ examined: 4, stoppedBy: "drained" });
  });

  it("a D1 write failure for one run is counted in failed and does not stop the others; the next sweep resolves it", async () => {
    const ws = await makeWorkspace("budget-fail");
    const now = Date.now();
    const order = await overdueRuns(ws, 6, now);
    const poisoned = order[2]!;
    const failing = failingWritesFor(new Set([poisoned]));

    // One run at a time, so the runs after the failing one are handled after it fails.
    const { value: report, json } = await capturingErrors(() =>
      sweep({ tracker: unableTracker("rejects").tracker, concurrency: 1 }, failing.db),
    );
    expect(failing.failures()).toBe(1);
    expect(report).toMatchObject({ examined: 6, failed: 1, reconciled: { "lifecycle.stale_queued": 5 }, lostRace: 0, stoppedBy: "drained" });
    expect(json).toEqual([{ level: "error", event: "sweep.run_failed", runId: poisoned, error: "injected: D1 write failed" }]);
    for (const id of order) expect(await statusOf(id)).toBe(id === poisoned ? "queued" : "completed");
    expect(await actionsOf(poisoned)).toEqual(["run.queued"]);

    const next = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(next).toMatchObject({ examined: 1, failed: 0, reconciled: { "lifecycle.stale_queued": 1 } });
    expect(await actionsOf(poisoned)).toEqual(["run.queued", "run.reconciled"]);
  });

  it("runs its tracker vouches for but cannot refresh do not starve the runs behind them (issue 9, item 9)", async () => {
    const ws = await makeWorkspace("budget-starve");
    const now = Date.now();
    const order = await overdueRuns(ws, 13, now);
    const vouched = new Set(order.slice(0, 10));
    const tracker = (runId: string): SweepTracker =>
      vouched.has(runId)
        ? {
            status: async () => ({ ...(await realStatus(runId)), vouches: true }) as TrackerStatus,
            refresh: () => new Promise<never>(() => {}),
            track: () => Promise.reject(new Error("not used")),
          }
        : unableTracker("rejects").tracker(runId);

    const report = await sweep({ batchSize: 5, trackerTimeoutMs: 20, tracker });
    expect(report).toMatchObject({ examined: 13, vouched: 10, reconciled: { "lifecycle.stale_queued": 3 }, stoppedBy: "drained", failed: 0 });
    for (const id of order) expect(await statusOf(id)).toBe(vouched.has(id) ? "queued" : "completed");
    // Give the vouched runs real deadlines so later sweeps in this file leave them be.
    for (const id of vouched) await setDeadline(id, Date.now() + 600_000);
  });
});

/** A known tracker's answer shape for a queued run (the stub above marks it vouching). */
async function realStatus(runId: string): Promise<TrackerStatus> {
  const run = await storedRow(runId);
  return {
    known: true,
    state: {
      ...initialTrackerState({ runId, workspaceId: run.workspace_id, type: run.type, maxAttempts: run.max_attempts, attempt: 0, dueAt: run.created_at }),
      dispatch: { n: 1, dueAt: run.created_at, claimed: false, sends: 1, sentAt: run.created_at },
    },
    action: { kind: "wait", until: Date.now() + 60_000 },
    vouches: true,
  };
}
