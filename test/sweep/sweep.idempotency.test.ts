/**
 * Running a detection path twice, or two paths at once, changes nothing more
 * (contract section 4): the compare-and-set picks one winner, the winner
 * alone writes the `run.reconciled` event, and the sweep counts a lost race
 * in `lostRace` instead of writing.
 */
import { runDurableObjectAlarm } from "cloudflare:test";
import { beforeEach, describe, expect, it } from "vitest";
import { MAX_SENDS } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { ageTracker, createRun, tracker } from "../support/execution";
import { heldWrites, writeBarrier } from "../support/d1";
import {
  bridgeDeadLetter,
  createQueued,
  createRunning,
  DEMO_POLICY as P,
  drainOverdue,
  eventsOf,
  GRACE_MS,
  makeOverdue,
  reconciledTotal,
  storedRow,
  sweep,
  unableTracker,
} from "../support/sweep";

beforeEach(drainOverdue);

const reconciledEvents = async (runId: string) => (await eventsOf(runId)).filter((e) => e.action === "run.reconciled");

describe("sweep twice", () => {
  it("one after the other: one transition, one run.reconciled; the second sweep finds nothing", async () => {
    const ws = await makeWorkspace("idem-twice");
    const run = await createRunning(ws);
    await makeOverdue(run.id, 5_000);

    const first = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(first).toMatchObject({ examined: 1, reconciled: { "lifecycle.stale_running": 1 }, lostRace: 0 });
    const after = await storedRow(run.id);

    const second = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(second).toMatchObject({ examined: 0, reconciled: {}, lostRace: 0, d1: { rowsWritten: 0 } });
    expect(await storedRow(run.id)).toEqual(after);
    expect(await reconciledEvents(run.id)).toHaveLength(1);
  });

  it("at the same time, both having read and decided before either writes: the compare-and-set picks one, the loser counts lostRace", async () => {
    const ws = await makeWorkspace("idem-concurrent");
    const run = await createQueued(ws);
    await makeOverdue(run.id, 5_000);
    const barrier = writeBarrier(2);

    const reports = await Promise.all([
      sweep({ tracker: unableTracker("rejects").tracker }, barrier.db),
      sweep({ tracker: unableTracker("rejects").tracker }, barrier.db),
    ]);
    // Both compare-and-sets ran against the same (queued, 0): exactly one changed the row.
    expect(barrier.casChanges.slice(0, 2).sort()).toEqual([0, 1]);
    expect(reports.map((r) => r.examined)).toEqual([1, 1]);
    expect(reports.map(reconciledTotal).sort()).toEqual([0, 1]);
    expect(reports.map((r) => r.lostRace).sort()).toEqual([0, 1]);
    expect(await storedRow(run.id)).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_queued", reconciled_by: "sweep" });
    expect(await reconciledEvents(run.id)).toHaveLength(1);
  });
});

describe("sweep concurrent with the tracker's alarm", () => {
  const variants = [
    {
      name: "queued past its deadline",
      setup: async (ws: string) => {
        const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
        // Re-sent twice (the tracker's alarm), then silent past its stale time and D1's deadline.
        for (let i = 1; i < MAX_SENDS; i++) {
          await ageTracker(run.id, P.staleQueuedAfterMs / MAX_SENDS + 1);
          await runDurableObjectAlarm(tracker(run.id));
        }
        await ageTracker(run.id, P.staleQueuedAfterMs / MAX_SENDS + GRACE_MS + 5_000);
        return run;
      },
      alarmReason: "lifecycle.stale_queued",
      sweepReason: "lifecycle.stale_queued",
    },
    {
      name: "running on its last attempt, heartbeat lost",
      setup: async (ws: string) => {
        const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
        const t = tracker(run.id);
        for (let n = 1; n <= P.maxAttempts; n++) {
          expect(await t.claim({ runId: run.id, dispatch: n })).toMatchObject({ ok: true, run: { attempt: n } });
          if (n < P.maxAttempts) await t.report({ kind: "failure", attempt: n, reason: "handler.error", retryable: true, message: "retry" });
        }
        await ageTracker(run.id, P.staleRunningAfterMs + GRACE_MS + 5_000);
        return run;
      },
      alarmReason: "lifecycle.heartbeat_lost",
      sweepReason: "lifecycle.stale_running",
    },
  ] as const;

  for (const v of variants) {
    it(`${v.name}: Promise.all of both → exactly one terminal transition and one terminal event`, async () => {
      const ws = await makeWorkspace("idem-alarm");
      const run = await v.setup(ws);
      await makeOverdue(run.id, 5_000);

      const [report, alarmRan] = await Promise.all([sweep(), runDurableObjectAlarm(tracker(run.id))]);
      expect(alarmRan).toBe(true);

      const row = await storedRow(run.id);
      expect(row).toMatchObject({ status: "completed", outcome: "failed" });
      expect(["tracker_alarm", "sweep"]).toContain(row.reconciled_by);
      expect(row.reason_code).toBe(row.reconciled_by === "sweep" ? v.sweepReason : v.alarmReason);
      const events = await reconciledEvents(run.id);
      expect(events).toHaveLength(1);
      expect(events[0]!.actor).toBe(row.reconciled_by === "sweep" ? "system:sweep" : "system:tracker");
      // The sweep either won, lost the race, or found the run already resolved.
      expect(reconciledTotal(report)).toBe(row.reconciled_by === "sweep" ? 1 : 0);
      expect(reconciledTotal(report) + report.lostRace).toBe(report.examined);
      const setupActions = new Set(["run.queued", "run.attempt_started", "run.attempt_failed", "run.redispatched"]);
      expect((await eventsOf(run.id)).filter((e) => !setupActions.has(e.action))).toHaveLength(1);
    });
  }

  it("the alarm wins while the sweep is about to write: the sweep's compare-and-set fails and counts lostRace", async () => {
    const ws = await makeWorkspace("idem-alarm-first");
    const run = await variants[1].setup(ws);
    await makeOverdue(run.id, 5_000);
    const writes = heldWrites();

    const sweeping = sweep({}, writes.db);
    await writes.arrived; // the sweep asked the tracker, decided stale_running, and is about to write
    expect(await runDurableObjectAlarm(tracker(run.id))).toBe(true);
    expect(await storedRow(run.id)).toMatchObject({ status: "completed", reconciled_by: "tracker_alarm" });
    writes.release();
    const report = await sweeping;

    expect(report).toMatchObject({ examined: 1, reconciled: {}, lostRace: 1, failed: 0 });
    expect(await storedRow(run.id)).toMatchObject({ reason_code: "lifecycle.heartbeat_lost", reconciled_by: "tracker_alarm" });
    const events = await reconciledEvents(run.id);
    expect(events.map((e) => e.actor)).toEqual(["system:tracker"]);
  });
});

describe("sweep concurrent with the dead-letter bridge", () => {
  it("Promise.all of both: one winner, one run.reconciled; the message is acked either way", async () => {
    const ws = await makeWorkspace("idem-dlq");
    const run = await createQueued(ws);
    await makeOverdue(run.id, 5_000);

    const [report, settled] = await Promise.all([sweep({ tracker: unableTracker("rejects").tracker }), bridgeDeadLetter(run)]);
    expect(settled.explicitAcks).toHaveLength(1);
    expect(settled.retryMessages).toEqual([]);

    const row = await storedRow(run.id);
    expect(["dead_letter", "sweep"]).toContain(row.reconciled_by);
    expect(row.reason_code).toBe(row.reconciled_by === "sweep" ? "lifecycle.stale_queued" : "queue.max_attempts_exceeded");
    const events = await reconciledEvents(run.id);
    expect(events.map((e) => e.actor)).toEqual([row.reconciled_by === "sweep" ? "system:sweep" : "system:dead-letter"]);
    expect(reconciledTotal(report)).toBe(row.reconciled_by === "sweep" ? 1 : 0);
    expect(reconciledTotal(report) + report.lostRace).toBe(report.examined);
  });

  it("the bridge wins while the sweep is about to write: lostRace counts the sweep, nothing of it is written", async () => {
    const ws = await makeWorkspace("idem-dlq-first");
    const run = await createQueued(ws);
    await makeOverdue(run.id, 5_000);
    const writes = heldWrites();

    const sweeping = sweep({ tracker: unableTracker("rejects").tracker }, writes.db);
    await writes.arrived;
    const settled = await bridgeDeadLetter(run, 3);
    expect(settled.explicitAcks).toHaveLength(1);
    writes.release();
    const report = await sweeping;

    expect(report).toMatchObject({ examined: 1, reconciled: {}, lostRace: 1, failed: 0 });
    // The loser's second round only read; its audit insert never ran.
    expect(writes.held()).toBe(1);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({ status: "completed", reason_code: "queue.max_attempts_exceeded", reconciled_by: "dead_letter" });
    const events = await reconciledEvents(run.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ actor: "system:dead-letter", metadata: { evidence: { queue: "operations-dlq", dlqDeliveries: 3 } } });
  });

  it("the sweep wins first: a later dead-letter message changes nothing and is still acked", async () => {
    const ws = await makeWorkspace("idem-dlq-late");
    const run = await createQueued(ws);
    await makeOverdue(run.id, 5_000);
    expect((await sweep({ tracker: unableTracker("rejects").tracker })).reconciled).toEqual({ "lifecycle.stale_queued": 1 });
    const before = await storedRow(run.id);

    const settled = await bridgeDeadLetter(run);
    expect(settled.explicitAcks).toHaveLength(1);
    expect(await storedRow(run.id)).toEqual(before);
    expect((await reconciledEvents(run.id)).map((e) => e.actor)).toEqual(["system:sweep"]);
  });
});
