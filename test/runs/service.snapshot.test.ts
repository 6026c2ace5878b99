/**
 * A transition that decides on the caller's snapshot of the run (the row D1
 * last returned to the run's tracker) instead of reading it: one D1 round trip,
 * not two, and never a write made since lost. The snapshot is fenced on every
 * column a write changes without a transition (a heartbeat flush, a deadline
 * move, infrastructure errors) besides status, attempt and the cancel flag, so
 * an old snapshot loses its round and the next round reads. A refusal is
 * always decided on a read. Round trips are D1's own calls (meteredDb), a batch
 * counting once.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { meteredDb, type RunRecord } from "../../src/runs";
import { DEMO } from "../support/demo";
import { makeWorkspace, manualClock } from "../support/fixtures";
import { T0, eventsOf, newRun, serviceOn, storedRow } from "../support/runs";

async function setup(name: string) {
  const ws = await makeWorkspace(name);
  const clock = manualClock(T0);
  const m = meteredDb(env.DB);
  const svc = serviceOn(m.db, clock.now);
  /** D1 round trips made by `fn` alone. */
  const roundTrips = async <T>(fn: () => Promise<T>): Promise<{ value: T; roundTrips: number }> => {
    const before = m.cost.roundTrips;
    const value = await fn();
    return { value, roundTrips: m.cost.roundTrips - before };
  };
  return { ws, clock, svc, roundTrips };
}

function rowOf<T extends { ok: boolean; run: RunRecord | null }>(answer: T): RunRecord {
  expect(answer.ok).toBe(true);
  if (!answer.run) throw new Error("no run in the answer");
  return answer.run;
}

describe("claim and completion on the caller's snapshot", () => {
  it("take one round trip each and leave the row and events exactly as reading first would", async () => {
    const { ws, clock, svc, roundTrips } = await setup("snapshot");
    const withSnapshot = await newRun(svc, ws);
    const withRead = await newRun(svc, ws);
    clock.advance(1_000);

    const claimed = await roundTrips(() => svc.claim(withSnapshot.id, 1, 1, withSnapshot));
    expect(claimed.roundTrips).toBe(1);
    const read = await roundTrips(() => svc.claim(withRead.id, 1, 1));
    expect(read.roundTrips).toBe(2);
    clock.advance(1_000);

    const completed = await roundTrips(() => svc.complete(withSnapshot.id, 1, { outcome: "succeeded", outputJson: '{"n":1}' }, rowOf(claimed.value)));
    expect(completed.roundTrips).toBe(1);
    await svc.complete(withRead.id, 1, { outcome: "succeeded", outputJson: '{"n":1}' });

    const { id: _a, ...a } = await storedRow(withSnapshot.id);
    const { id: _b, ...b } = await storedRow(withRead.id);
    expect(a).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(a).toEqual(b);
    const strip = (events: { action: string; metadata: unknown; createdAt: number }[]) => events.map(({ action, metadata, createdAt }) => ({ action, metadata, createdAt }));
    expect(strip(await eventsOf(withSnapshot.id))).toEqual(strip(await eventsOf(withRead.id)));
  });

  it("a heartbeat flushed after the claim's row: the completion loses its round, then keeps the flushed progress and heartbeat", async () => {
    const { ws, clock, svc, roundTrips } = await setup("snapshot-flush");
    const run = await newRun(svc, ws);
    const claimed = rowOf(await svc.claim(run.id, 1, 1, run));
    clock.advance(DEFAULT_SETTINGS.heartbeatFlushIntervalMs);
    const progress = { total: 10, processed: 7, succeeded: 7, failed: 0 };
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress })).toEqual({ ok: true, flushed: true });
    const flushedAt = clock.now();
    clock.advance(1_000);

    // The result carries no progress: the run keeps the last known one (contract section 1).
    const completed = await roundTrips(() => svc.complete(run.id, 1, { outcome: "succeeded" }, claimed));
    expect(completed.roundTrips).toBe(3);
    expect(rowOf(completed.value)).toMatchObject({ status: "completed", progress, lastHeartbeatAt: flushedAt });
  });

  it("infrastructure errors recorded after the claim's row stay in the completed run's diagnostics", async () => {
    const { ws, clock, svc } = await setup("snapshot-errors");
    const run = await newRun(svc, ws);
    const claimed = rowOf(await svc.claim(run.id, 1, 1, run));
    await svc.noteInfrastructureErrors(run.id, [{ at: clock.now(), where: "heartbeat_flush", message: "D1 was unavailable" }]);
    clock.advance(1_000);

    const completed = rowOf(await svc.complete(run.id, 1, { outcome: "succeeded" }, claimed));
    expect(completed.diagnostics.infrastructureErrors).toEqual([expect.objectContaining({ where: "heartbeat_flush", message: "D1 was unavailable" })]);
  });

  it("a deadline moved after the acceptance's row costs the claim its round, not the move", async () => {
    const { ws, clock, svc, roundTrips } = await setup("snapshot-deadline");
    const run = await newRun(svc, ws);
    expect(await svc.moveQueuedDeadline(run.id, 0, (run.deadlineAt ?? 0) + 60_000)).toBe(true);
    clock.advance(1_000);
    const claimed = await roundTrips(() => svc.claim(run.id, 1, 1, run));
    expect(claimed.roundTrips).toBe(3);
    expect(rowOf(claimed.value)).toMatchObject({ status: "running", attempt: 1 });
  });

  it("a cancel requested after the claim's row is not lost: the result ends the run cancelled", async () => {
    const { ws, clock, svc } = await setup("snapshot-cancel");
    const run = await newRun(svc, ws);
    const claimed = rowOf(await svc.claim(run.id, 1, 1, run));
    clock.advance(1_000);
    expect(await svc.cancel(run.id, { actor: "user:op@snapshot.test", reason: "wrong input" })).toMatchObject({ ok: true, run: { status: "running" } });
    clock.advance(1_000);

    const completed = rowOf(await svc.complete(run.id, 1, { outcome: "succeeded" }, claimed));
    expect(completed).toMatchObject({ status: "completed", outcome: "cancelled", cancelRequestedBy: "user:op@snapshot.test" });
    const actions = (await eventsOf(run.id)).map((e) => e.action);
    expect(actions).toEqual(["run.queued", "run.attempt_started", "run.cancel_requested", "run.cancelled"]);
  });

  it("a refusal is decided on a read: a result on a snapshot older than its claim is applied, not discarded as late", async () => {
    const { ws, clock, svc } = await setup("snapshot-refusal");
    const run = await newRun(svc, ws);
    // The claim committed, but its caller never got the row back: it still holds the acceptance's.
    await svc.claim(run.id, 1, 1);
    clock.advance(1_000);

    const completed = await svc.complete(run.id, 1, { outcome: "succeeded" }, run);
    expect(completed).toMatchObject({ ok: true, run: { status: "completed", outcome: "succeeded", attempt: 1 } });
    const actions = (await eventsOf(run.id)).map((e) => e.action);
    expect(actions).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("a snapshot of a run that ended since: the late result is recorded against the stored row", async () => {
    const { ws, clock, svc } = await setup("snapshot-late");
    const run = await newRun(svc, ws);
    const claimed = rowOf(await svc.claim(run.id, 1, 1, run));
    clock.advance(DEFAULT_SETTINGS.heartbeatFlushIntervalMs);
    await svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} });

    const late = await svc.complete(run.id, 1, { outcome: "succeeded" }, claimed);
    expect(late).toMatchObject({ ok: false, refusal: "terminal", run: { status: "completed", outcome: "failed", reconciledBy: "sweep" } });
    const actions = (await eventsOf(run.id)).map((e) => e.action);
    expect(actions).toEqual(["run.queued", "run.attempt_started", "run.reconciled", "run.late_result_discarded"]);
  });
});
