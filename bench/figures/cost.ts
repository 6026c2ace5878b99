/**
 * Figure 4 — what one run costs the platform, counted by the bench Worker's
 * counting bindings (bench/worker/instrument.ts) around production code:
 * D1 rows read/written (D1's own meta), Durable Object requests (RPC calls on
 * tracker stubs + alarm invocations) and queue operations (messages written,
 * delivered, and acknowledged = delivered − retried; Cloudflare bills each of
 * the three as one operation per 64 KB message).
 *
 * - per successful short run: R demo.work runs of two 100 ms steps (done
 *   before their first heartbeat), accepted through the API, until terminal.
 *   Not in the window: each tracker's clean-up alarm 15 min after the run
 *   (TRACKER_RETENTION_MS), one more alarm invocation per run (from the code).
 * - per minute of heartbeating: H demo.work runs of 58 one-second steps, all
 *   running; counters over 45 s of their lives, per run, scaled to a minute.
 *   demo.work's attempt timeout is 60 s (contract v2), so no attempt lives
 *   through a whole minute of window: the earlier 100-step runs timed out in
 *   it. The window holds one of each run's 30 s flushes (the one at claim +
 *   30 s), so the scaled figure reads 1.33 flushes a minute where a long
 *   attempt makes 2: the steady state is 2 × the rows of one flush
 *   (test/runs/write-cost.test.ts pins a simulated minute at ≤ 4 rows).
 * - the trackers' own storage writes (bench/worker/instrument.ts counts each
 *   `put` key, `setAlarm`, `delete` and `deleteAll` a tracker makes).
 *
 * Runs enter through the API, so each run's first dispatch is sent once, by
 * its tracker (the dispatch model); nothing here sends a second copy.
 */
import type { BenchClient, Counters } from "../lib/client";
import { pool } from "../lib/client";
import { sleep, WORKSPACE } from "../lib/dev";
import { waitFor, withInstance } from "../lib/instance";

export interface CostSample {
  runs: number;
  windowMs: number;
  d1RowsRead: number;
  d1RowsWritten: number;
  d1RoundTrips: number;
  doRequests: number;
  doRpc: Record<string, number>;
  doAlarms: number;
  /** The trackers' own storage writes, by call (`put` counts keys: one row each in the object's SQLite KV table). */
  doStorage: Record<string, number>;
  /** Of those, rows written: keys put and alarms set (`setAlarm` stores the alarm time in the object's storage). */
  doStorageRowsWritten: number;
  queueWrites: number;
  queueReads: number;
  queueDeletes: number;
  queueOperations: number;
}

export interface CostResult {
  perShortRun: CostSample;
  perHeartbeatMinute: CostSample;
}

function diff(a: Counters, b: Counters): Counters {
  const sub = (x: Record<string, number>, y: Record<string, number>) =>
    Object.fromEntries([...new Set([...Object.keys(x), ...Object.keys(y)])].map((k) => [k, (y[k] ?? 0) - (x[k] ?? 0)]));
  return {
    d1: {
      rowsRead: b.d1.rowsRead - a.d1.rowsRead,
      rowsWritten: b.d1.rowsWritten - a.d1.rowsWritten,
      roundTrips: b.d1.roundTrips - a.d1.roundTrips,
    },
    d1Faults: {
      beforeCommit: b.d1Faults.beforeCommit - a.d1Faults.beforeCommit,
      afterCommit: b.d1Faults.afterCommit - a.d1Faults.afterCommit,
    },
    doRpc: sub(a.doRpc, b.doRpc),
    doStorage: sub(a.doStorage ?? {}, b.doStorage ?? {}),
    doAlarms: b.doAlarms - a.doAlarms,
    doAlarmsSuppressed: b.doAlarmsSuppressed - a.doAlarmsSuppressed,
    queueSent: sub(a.queueSent, b.queueSent),
    queueDelivered: sub(a.queueDelivered, b.queueDelivered),
    queueRetried: sub(a.queueRetried, b.queueRetried),
    since: a.at,
    at: b.at,
  };
}

/** Counters per run (and, with `perMinuteOf`, scaled to one minute of the window). */
function perRun(c: Counters, runs: number, perMinuteOf?: number): CostSample {
  const scale = (perMinuteOf ? 60_000 / perMinuteOf : 1) / runs;
  const sum = (m: Record<string, number>) => Object.values(m).reduce((x, y) => x + y, 0);
  const rpc = sum(c.doRpc);
  const writes = c.queueSent.operations ?? 0;
  const reads = c.queueDelivered.operations ?? 0;
  const deletes = reads - (c.queueRetried.operations ?? 0);
  const r = (v: number) => Math.round(v * scale * 100) / 100;
  return {
    runs,
    windowMs: c.at - c.since,
    d1RowsRead: r(c.d1.rowsRead),
    d1RowsWritten: r(c.d1.rowsWritten),
    d1RoundTrips: r(c.d1.roundTrips),
    doRequests: r(rpc + c.doAlarms),
    doRpc: Object.fromEntries(Object.entries(c.doRpc).map(([k, v]) => [k, r(v)])),
    doAlarms: r(c.doAlarms),
    doStorage: Object.fromEntries(Object.entries(c.doStorage ?? {}).map(([k, v]) => [k, r(v)])),
    doStorageRowsWritten: r((c.doStorage?.put ?? 0) + (c.doStorage?.setAlarm ?? 0)),
    queueWrites: r(writes),
    queueReads: r(reads),
    queueDeletes: r(deletes),
    queueOperations: r(writes + reads + deletes),
  };
}

async function terminalCount(client: BenchClient): Promise<number> {
  const [row] = await client.sql<{ n: number }>("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND status = 'completed'", [WORKSPACE]);
  return row?.n ?? 0;
}

/** One-second steps of a heartbeating run: under demo.work's 60 s attempt timeout, past the window. */
const HEARTBEAT_STEPS = 58;
/** The heartbeat window, scaled to a minute in the figure. */
const HEARTBEAT_WINDOW_MS = 45_000;

export async function cost(shortRuns: number, heartbeatRuns: number): Promise<CostResult> {
  return withInstance("cost", {}, async (_dev, client) => {
    // Warm-up: the first runs pay for module and Durable Object start-up.
    await pool(Array.from({ length: 5 }), 5, () => client.createRun("demo.work", { steps: 2, stepMs: 100 }));
    await waitFor("warm-up runs", 60_000, 250, async () => ((await terminalCount(client)) >= 5 ? true : undefined));
    await sleep(1_000);

    const before = await client.counters();
    await pool(Array.from({ length: shortRuns }), 8, () => client.createRun("demo.work", { steps: 2, stepMs: 100 }));
    await waitFor("short runs terminal", 180_000, 250, async () => ((await terminalCount(client)) >= 5 + shortRuns ? true : undefined));
    await sleep(2_000);
    const short = diff(before, await client.counters());
    const [ok] = await client.sql<{ n: number }>(
      "SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND outcome = 'succeeded'",
      [WORKSPACE],
    );
    if ((ok?.n ?? 0) !== 5 + shortRuns) throw new Error(`only ${ok?.n} of ${5 + shortRuns} short runs succeeded`);

    // Heartbeating: all H runs running (well past their claim), then one minute.
    await pool(Array.from({ length: heartbeatRuns }), 8, () => client.createRun("demo.work", { steps: HEARTBEAT_STEPS, stepMs: 1_000 }));
    await waitFor("heartbeat runs running", 60_000, 250, async () => {
      const [row] = await client.sql<{ n: number }>("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND status = 'running'", [WORKSPACE]);
      return (row?.n ?? 0) >= heartbeatRuns ? true : undefined;
    });
    await sleep(3_000);
    const hbBefore = await client.counters();
    await sleep(HEARTBEAT_WINDOW_MS);
    const hb = diff(hbBefore, await client.counters());
    const [still] = await client.sql<{ n: number }>("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND status = 'running'", [WORKSPACE]);
    if ((still?.n ?? 0) !== heartbeatRuns) throw new Error(`${still?.n} of ${heartbeatRuns} heartbeat runs still running after the window`);
    return { perShortRun: perRun(short, shortRuns), perHeartbeatMinute: perRun(hb, heartbeatRuns, hb.at - hb.since) };
  });
}
