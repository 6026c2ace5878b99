/**
 * Heartbeats on real D1: throttled to one write per flush interval per run
 * (the throttle is in the UPDATE's WHERE, so concurrent callers cannot beat
 * it), never an audit event, and still fenced/terminal-checked when the write
 * is skipped.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { statementRecorder } from "../support/d1";
import { DEMO, DEMO_POLICY as P } from "../support/demo";
import { T0, newRun, parsed, serviceOn, snapshot, storedRow } from "../support/runs";

const FLUSH_MS = DEFAULT_SETTINGS.heartbeatFlushIntervalMs;
const progress = (processed: number) => ({ total: 10, processed, succeeded: processed, failed: 0 });

/** A run claimed by attempt 1 at `claimedAt`. */
async function claimed() {
  const ws = await makeWorkspace("heartbeat");
  const clock = manualClock(T0);
  const svc = runService(clock.now);
  const run = await newRun(svc, ws);
  const claimedAt = clock.advance(1_000);
  await svc.claim(run.id, 1);
  return { clock, svc, run, claimedAt };
}

describe("throttle", () => {
  it("within the flush interval after the claim: ok, not flushed, row unchanged", async () => {
    const { clock, svc, run } = await claimed();
    const before = await snapshot(run.id);
    clock.advance(FLUSH_MS - 1);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(4) })).toEqual({ ok: true, flushed: false });
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("once the interval has passed: flushed, with last_heartbeat_at, deadline, progress and updated_at refreshed, and no audit event", async () => {
    const { clock, svc, run } = await claimed();
    const before = await snapshot(run.id);
    const now = clock.advance(FLUSH_MS);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(5) })).toEqual({ ok: true, flushed: true });
    const after = await snapshot(run.id);
    expect(after.row).toEqual({
      ...before.row,
      last_heartbeat_at: now,
      deadline_at: now + P.staleRunningAfterMs,
      progress: JSON.stringify(progress(5)),
      updated_at: now,
    });
    expect(after.events).toEqual(before.events);
  });

  it("a flushed heartbeat without progress keeps the stored progress", async () => {
    const { clock, svc, run } = await claimed();
    clock.advance(FLUSH_MS);
    await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(2) });
    clock.advance(FLUSH_MS);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1 })).toEqual({ ok: true, flushed: true });
    expect(parsed((await storedRow(run.id)).progress)).toEqual(progress(2));
  });

  it("force: true flushes within the interval", async () => {
    const { clock, svc, run } = await claimed();
    const now = clock.advance(1);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(10), force: true })).toEqual({ ok: true, flushed: true });
    expect(await storedRow(run.id)).toMatchObject({ last_heartbeat_at: now, deadline_at: now + P.staleRunningAfterMs, progress: JSON.stringify(progress(10)) });
  });

  it("N heartbeats within one interval cost at most one D1 write (measured from D1 meta)", async () => {
    const { clock, run } = await claimed();
    const metered = statementRecorder();
    const svc = serviceOn(metered.db, clock.now);
    const flushedAt = clock.advance(FLUSH_MS);
    const answers = [];
    // 12 heartbeats, 400 ms apart: 4.4 s, all inside one 5 s interval.
    for (let i = 0; i < 12; i++) {
      if (i > 0) clock.advance(400);
      answers.push(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(i) }));
    }
    expect(answers.map((a) => a.ok && a.flushed)).toEqual([true, ...Array.from({ length: 11 }, () => false)]);
    const rowsWritten = metered.calls.flat().reduce((n, w) => n + w.rowsWritten, 0);
    const changes = metered.calls.flat().reduce((n, w) => n + w.changes, 0);
    console.log(`heartbeat throttle: 12 heartbeats in one ${FLUSH_MS} ms interval → ${changes} row changed, ${rowsWritten} rows_written (D1 meta, incl. index entries)`);
    expect(changes).toBe(1);
    expect(metered.calls.flat().filter((w) => w.rowsWritten > 0)).toHaveLength(1);
    expect(await storedRow(run.id)).toMatchObject({ last_heartbeat_at: flushedAt, updated_at: flushedAt, progress: JSON.stringify(progress(0)) });
  });

  it("concurrent heartbeats at the same instant past the interval: exactly one flushes", async () => {
    const { clock, svc, run } = await claimed();
    clock.advance(FLUSH_MS);
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, progress: progress(i) })));
    expect(answers.every((a) => a.ok)).toBe(true);
    expect(answers.filter((a) => a.ok && a.flushed)).toHaveLength(1);
  });
});

describe("refusals when the write is skipped", () => {
  it("a heartbeat from attempt 1 after attempt 2 took over is fenced, inside the interval too", async () => {
    const { clock, svc, run } = await claimed();
    clock.advance(100);
    await svc.claim(run.id, 2);
    const before = await snapshot(run.id);
    // Inside attempt 2's interval: the throttle must not answer "ok, not flushed".
    clock.advance(100);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1 })).toMatchObject({ ok: false, refusal: "fenced" });
    clock.advance(FLUSH_MS);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, force: true })).toMatchObject({ ok: false, refusal: "fenced" });
    expect(await snapshot(run.id)).toEqual(before);
  });

  it("a heartbeat from an attempt whose run went back to queued (retry) is fenced", async () => {
    const { clock, svc, run } = await claimed();
    clock.advance(100);
    await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("transient") });
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, force: true })).toMatchObject({ ok: false, refusal: "fenced" });
    expect((await storedRow(run.id)).status).toBe("queued");
  });

  it("a heartbeat on a completed run is terminal and changes nothing", async () => {
    const { clock, svc, run } = await claimed();
    clock.advance(100);
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    const before = await snapshot(run.id);
    clock.advance(FLUSH_MS);
    expect(await svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, force: true, progress: progress(1) })).toMatchObject({
      ok: false,
      refusal: "terminal",
    });
    expect(await snapshot(run.id)).toEqual(before);
  });
});
