/**
 * What each transition costs in D1, as D1 itself counts it (`meta`, through
 * meteredDb): rows written per step of a run's life, and the round trips that
 * would come back if acceptance re-read its insert or the sweep re-read the
 * run it had just read. D1 bills a row written for the table row and for each
 * index entry an INSERT or UPDATE writes; an UPDATE writes the entries of
 * every index on a column it names in SET, whether or not the value changed.
 *
 * Per successful run, 15 (issue 12's target: at most 15): 7 at acceptance
 * (the run row and 4 index entries: deadline, workspace, type, outcome; the
 * `run.queued` event and its workspace entry), 4 at the claim and 4 at
 * completion (the row, one index entry, the transition's event and its
 * workspace entry). Both tables are `WITHOUT ROWID` (migrations 0012, 0013):
 * no rowid key entry beside a row, and an event's subject timeline is its
 * primary key. An index added back to either table fails these counts.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { meteredDb, RunService, type D1Cost } from "../../src/runs";
import { purgeExpired } from "../../src/sweep/retention";
import { DEMO, DEMO_INPUT } from "../support/demo";
import { makeWorkspace, manualClock } from "../support/fixtures";

function metered() {
  const m = meteredDb(env.DB);
  const svc = new RunService(m.db, { policyFor, settings: DEFAULT_SETTINGS });
  /** The cost of `fn` alone. */
  const cost = async <T>(fn: () => Promise<T>): Promise<{ value: T; cost: D1Cost }> => {
    const before = { ...m.cost };
    const value = await fn();
    return {
      value,
      cost: { rowsRead: m.cost.rowsRead - before.rowsRead, rowsWritten: m.cost.rowsWritten - before.rowsWritten, roundTrips: m.cost.roundTrips - before.roundTrips },
    };
  };
  return { svc, cost };
}

describe("rows written per transition", () => {
  it("a successful run: 7 at acceptance in one round trip, 4 at the claim, 4 at completion (15 in all); a heartbeat flush 2", async () => {
    const ws = await makeWorkspace("write-cost");
    const { svc, cost } = metered();
    const created = await cost(() => svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" }));
    if (!created.value.ok) throw new Error("not created");
    const run = created.value.run;
    // The answer is the row as stored (RETURNING), not a second read.
    expect(run).toMatchObject({ id: expect.stringMatching(/^run_/), workspaceId: ws, status: "queued", attempt: 0 });
    expect(created.cost).toMatchObject({ rowsWritten: 7, roundTrips: 1 });

    const claimed = await cost(() => svc.claim(run.id, 1, 1));
    expect(claimed.value.ok).toBe(true);
    expect(claimed.cost.rowsWritten).toBe(4);

    const flushed = await cost(() => svc.heartbeat({ runId: run.id, type: DEMO, attempt: 1, force: true, at: Date.now() + 1 }));
    expect(flushed.value).toEqual({ ok: true, flushed: true });
    expect(flushed.cost.rowsWritten).toBe(2);

    const completed = await cost(() => svc.complete(run.id, 1, { outcome: "succeeded" }));
    expect(completed.value.ok).toBe(true);
    expect(completed.cost.rowsWritten).toBe(4);
    expect(created.cost.rowsWritten + claimed.cost.rowsWritten + completed.cost.rowsWritten).toBeLessThanOrEqual(15);
  });

  it("a minute of heartbeats at demo.work's 1 s interval writes at most 4 rows (2 flushes of the row and its deadline entry)", async () => {
    const ws = await makeWorkspace("write-cost-minute");
    const clock = manualClock();
    const m = meteredDb(env.DB);
    const svc = new RunService(m.db, { policyFor, settings: DEFAULT_SETTINGS, clock: clock.now });
    const created = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" });
    if (!created.ok) throw new Error("not created");
    await svc.claim(created.run.id, 1, 1);
    const before = m.cost.rowsWritten;
    let flushes = 0;
    for (let s = 1; s <= 60; s++) {
      clock.advance(policyFor(DEMO).heartbeatIntervalMs);
      const beat = await svc.heartbeat({ runId: created.run.id, type: DEMO, attempt: 1, progress: { total: 60, processed: s, succeeded: s, failed: 0 } });
      if (beat.ok && beat.flushed) flushes++;
    }
    expect(flushes).toBe(2);
    expect(m.cost.rowsWritten - before).toBeLessThanOrEqual(4);
  });

  it("an idempotency key adds its one index entry; a run without a key writes none", async () => {
    const ws = await makeWorkspace("write-cost-key");
    const { svc, cost } = metered();
    const keyed = await cost(() => svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost", idempotencyKey: "k-1" }));
    expect(keyed.value).toMatchObject({ ok: true, created: true });
    expect(keyed.cost).toMatchObject({ rowsWritten: 8, roundTrips: 1 });
    // The replay finds the first run through the partial index, and writes nothing.
    const replay = await cost(() => svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost", idempotencyKey: "k-1" }));
    expect(replay.value).toMatchObject({ ok: true, created: false, run: { id: keyed.value.ok ? keyed.value.run.id : "" } });
    expect(replay.cost.rowsWritten).toBe(0);
    const events = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE subject_id = ?")
      .bind(keyed.value.ok ? keyed.value.run.id : "")
      .first<{ n: number }>();
    expect(events?.n).toBe(1);
  });

  it("the sweep's reconcile takes the run it read: one round trip, no second read", async () => {
    const ws = await makeWorkspace("write-cost-sweep");
    const { svc, cost } = metered();
    const created = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" });
    if (!created.ok) throw new Error("not created");
    const run = created.run;
    const reconciled = await cost(() =>
      svc.reconcile(run.id, {
        detector: "sweep",
        reason: "lifecycle.stale_queued",
        observed: { status: "queued", attempt: 0, deadlineAt: run.deadlineAt },
        evidence: {},
        snapshot: run,
      }),
    );
    expect(reconciled.value).toMatchObject({ ok: true, run: { status: "completed", reconciledBy: "sweep" } });
    expect(reconciled.cost.roundTrips).toBe(1);
  });

  it("a snapshot older than the row loses its round and decides again on the stored row: nothing written since is lost", async () => {
    const ws = await makeWorkspace("write-cost-stale");
    const { svc } = metered();
    const created = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" });
    if (!created.ok) throw new Error("not created");
    const run = created.run;
    // Written after the snapshot, with status, attempt and deadline unchanged.
    await svc.noteInfrastructureErrors(run.id, [{ at: 1, where: "claim", message: "D1 was unavailable" }]);
    const answer = await svc.reconcile(run.id, {
      detector: "sweep",
      reason: "lifecycle.stale_queued",
      observed: { status: "queued", attempt: 0, deadlineAt: run.deadlineAt },
      evidence: {},
      snapshot: run,
    });
    expect(answer.ok).toBe(true);
    expect(answer.run?.diagnostics).toMatchObject({ infrastructureErrors: [{ where: "claim", message: "D1 was unavailable" }], detectedBy: "sweep" });
  });
});

describe("retention's cost per run", () => {
  const DAY_MS = 86_400_000;
  const RUNS = 20;
  const RECENT = 60;

  it(`purging ${RUNS} expired runs (3 events each) beside ${RECENT} recent ones writes 4 rows per run and reads a bounded number`, async () => {
    const now = Date.now();
    const retentionMs = 30 * DAY_MS;
    // What earlier tests of this file left past the cutoff is gone first: the counts are this test's.
    await purgeExpired(env.DB, { now, retentionMs, maxBatches: 1_000 });
    const ws = await makeWorkspace("write-cost-retention");
    const clock = manualClock(now - 40 * DAY_MS);
    const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, clock: clock.now });
    for (let i = 0; i < RUNS; i++) {
      clock.advance(60_000);
      const c = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" });
      if (!c.ok) throw new Error("not created");
      await svc.claim(c.run.id, 1);
      await svc.complete(c.run.id, 1, { outcome: "succeeded" });
    }
    // Recent terminal runs beside them: the purge's search never reads them (ids after the cutoff).
    const recent = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS });
    for (let i = 0; i < RECENT; i++) {
      const c = await recent.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:cost" });
      if (!c.ok) throw new Error("not created");
      await recent.claim(c.run.id, 1);
      await recent.complete(c.run.id, 1, { outcome: "succeeded" });
    }
    const report = await purgeExpired(env.DB, { now, retentionMs });
    expect(report).toMatchObject({ runsDeleted: RUNS, eventsDeleted: 3 * RUNS });
    const perRun = { rowsWritten: report.d1.rowsWritten / RUNS, rowsRead: report.d1.rowsRead / RUNS };
    console.log(`retention per run: ${perRun.rowsWritten} rows written, ${perRun.rowsRead} rows read (${report.d1.roundTrips} round trips for ${RUNS} runs)`);
    // The run row and its 3 events; D1 counts no row written for the index entries a delete removes.
    expect(perRun.rowsWritten).toBe(4);
    // Each deleted row is found and its index entries removed (about 12 rows read per run of 3
    // events), plus the id scan's end: never the recent runs.
    expect(perRun.rowsRead).toBeLessThanOrEqual(13);
  });
});
