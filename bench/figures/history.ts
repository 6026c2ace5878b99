/**
 * Figures 2 and 3 — what history costs. One workspace grows to each size in
 * turn (default 10k, 100k, 1M terminal runs over 28 days: 90 % succeeded,
 * 5 % partially succeeded, 5 % failed, some of those reconciled), bulk-inserted
 * with a recursive CTE in chunks. At each size:
 *
 * - Figure 2: 100 overdue live runs (50 queued, 50 running, no tracker state)
 *   are added and the cron is fired once (/__scheduled, the production entry);
 *   the sweep's own `sweep.completed` log line gives D1's rows read and written
 *   (production's meteredDb). Then one idle sweep (nothing overdue).
 * - Figure 3: the admin's operations page, first page and a page 90 % deep
 *   into the history (keyset cursor): rows read by production's
 *   operationsPage (D1 meta), and the time of the whole HTTP page
 *   (/admin/operations, signed in with dev sign-in), median of 5. Then the
 *   live poll that follows when nothing transitioned (5 fresh queued runs sit
 *   on the first page). The seeded failures are counted into the failure
 *   tiles' hourly counters as migration 0010's backfill counts them (the seed
 *   writes runs by SQL, not through the service that keeps the counters).
 */
import type { BenchClient } from "../lib/client";
import { WORKSPACE, type DevServer } from "../lib/dev";
import { withInstance } from "../lib/instance";
import { median } from "../lib/stats";
import { rebuildFailureCountsSql } from "../../src/runs/failure-hours";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/** 28 days over 1M runs: one run every ~2.4 s, kept inside the 30-day retention. */
const SPACING_MS = Math.floor((28 * 86_400_000) / 1_000_000);
const CHUNK = 50_000;
/** Overdue live runs added at each size (figure 2). */
export const OVERDUE = 100;
const PAGE = 25;

/** SQL for the 10-character ULID time prefix of `expr` (epoch ms), so seeded ids sort like real ones. */
function ulidTime(expr: string): string {
  return Array.from({ length: 10 }, (_, i) => `substr('${CROCKFORD}', ((${expr} >> ${5 * (9 - i)}) & 31) + 1, 1)`).join(" || ");
}

const COLUMNS = `id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress,
  created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message,
  diagnostics, reconciled_by, idempotency_key, initiator, updated_at`;

/** Terminal runs with age index from..to (1 = newest), `base - x * SPACING_MS` apart. */
const HISTORY_SQL = `
WITH RECURSIVE n(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM n WHERE x < ?2),
t(x, ts) AS (SELECT x, ?3 - x * ${SPACING_MS} FROM n)
INSERT INTO operation_runs (${COLUMNS})
SELECT 'run_' || ${ulidTime("ts")} || printf('%016d', x), ?4, 'demo.work', 'completed',
  CASE x % 20 WHEN 0 THEN 'failed' WHEN 1 THEN 'partially_succeeded' ELSE 'succeeded' END,
  1, 3, '{"steps":10,"stepMs":100}',
  CASE x % 20 WHEN 1 THEN '{"total":10,"processed":10,"succeeded":9,"failed":1}' ELSE '{"total":10,"processed":10,"succeeded":10,"failed":0}' END,
  ts, ts + 50, ts + 1500, ts + 1000, NULL,
  CASE WHEN x % 20 <> 0 THEN NULL WHEN x % 60 = 0 THEN 'handler.failed' WHEN x % 60 = 20 THEN 'lifecycle.heartbeat_lost' ELSE 'handler.error' END,
  CASE x % 20 WHEN 0 THEN 'Step 3 of 10 failed (simulated).' WHEN 1 THEN '1 of 10 items failed (simulated).' ELSE NULL END,
  '{"attempts":[{"attempt":1,"startedAt":0}]}',
  CASE WHEN x % 60 = 20 THEN 'tracker_alarm' ELSE NULL END,
  NULL, 'user:bench-seed', ts + 1500
FROM t`;

/** `?1` overdue live runs, half queued, half running, due long before the sweep's grace; `?2` tags their ids. */
const OVERDUE_SQL = `
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
INSERT INTO operation_runs (${COLUMNS})
SELECT 'run_' || ${ulidTime("?3")} || printf('9%06d%09d', ?2, x), ?4, 'demo.work',
  CASE x % 2 WHEN 0 THEN 'queued' ELSE 'running' END, 'pending', x % 2, 3, '{"steps":10,"stepMs":100}',
  '{"total":0,"processed":0,"succeeded":0,"failed":0}',
  ?3 - 300000, CASE x % 2 WHEN 0 THEN NULL ELSE ?3 - 290000 END, NULL,
  CASE x % 2 WHEN 0 THEN NULL ELSE ?3 - 290000 END, ?3 - 120000 - x, NULL, NULL,
  '{"attempts":[]}', NULL, NULL, 'user:bench-seed', ?3 - 290000
FROM n`;

/** 5 fresh queued runs (due in a day: never overdue), newest of all, so the first page has live rows to poll. */
const LIVE_SQL = `
WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5)
INSERT INTO operation_runs (${COLUMNS})
SELECT 'run_' || ${ulidTime("?1")} || printf('8%06d%09d', ?2, x), ?3, 'demo.work', 'queued', 'pending', 0, 3,
  '{"steps":10,"stepMs":100}', '{"total":0,"processed":0,"succeeded":0,"failed":0}',
  ?1, NULL, NULL, NULL, ?1 + 86400000, NULL, NULL, '{"attempts":[]}', NULL, NULL, 'user:bench-seed', ?1
FROM n`;

export interface SweepCost {
  examined: number;
  reconciled: number;
  /** Overdue queued runs no tracker held, handed to their tracker (dispatch model: adopted, not failed). */
  adopted: number;
  rowsRead: number;
  rowsWritten: number;
  durationMs: number;
  /** The whole cron invocation (sweep + retention), from the counting D1 binding. */
  cronRowsRead: number;
  cronRowsWritten: number;
}

export interface AdminCost {
  rowsRead: number;
  /** Rows read by the whole HTTP request (session, membership, page), counting binding. */
  requestRowsRead: number;
  queryMs: number;
  pageMs: number;
  rows: number;
  tiles: Record<string, number>;
  /** The quiet live poll after the page: rows read (D1 meta) and whether it refreshed everything or only the live rows. */
  poll: { kind: string; liveRows: number; d1: { rowsRead: number; roundTrips: number } };
}

export interface HistoryPoint {
  terminalRuns: number;
  seedMs: number;
  sweep: SweepCost;
  idleSweep: SweepCost;
  adminFirst: AdminCost;
  adminDeep: AdminCost & { depth: number };
}

export interface HistoryResult {
  points: HistoryPoint[];
  /** Rows read per sweep, largest history minus smallest. */
  sweepReadGrowth: number;
  sweepWriteGrowth: number;
  flat: boolean;
}

async function seedHistory(client: BenchClient, from: number, to: number, base: number): Promise<void> {
  for (let lo = from; lo <= to; lo += CHUNK) {
    const hi = Math.min(to, lo + CHUNK - 1);
    const r = await client.sqlMeta(HISTORY_SQL, [lo, hi, base, WORKSPACE]);
    if (r.meta.changes !== hi - lo + 1) throw new Error(`history seed ${lo}..${hi}: ${r.meta.changes} rows inserted`);
  }
}

/** Wait until no run of the bench workspace is live (the fresh LIVE_SQL runs aside: due in a day). */
async function quiesce(client: BenchClient, deadlineMs = 180_000): Promise<void> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const [row] = await client.sql<{ n: number }>(
      "SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND status <> 'completed' AND deadline_at < ?",
      [WORKSPACE, Date.now() + 3_600_000],
    );
    if ((row?.n ?? 0) === 0) return;
    if (Date.now() > until) throw new Error(`${row?.n} runs still live after ${deadlineMs} ms`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

async function fireSweep(dev: DevServer, client: BenchClient): Promise<SweepCost> {
  await client.resetCounters();
  const line = dev.nextLog("sweep.completed", 120_000);
  await client.scheduled();
  const f = (await line).fields as Record<string, unknown>;
  const c = await client.counters();
  const reconciled = Object.values((f.reconciled ?? {}) as Record<string, number>).reduce((a, b) => a + b, 0);
  return {
    examined: Number(f.examined),
    reconciled,
    adopted: Number(f.adopted ?? 0),
    rowsRead: Number(f.rowsRead),
    rowsWritten: Number(f.rowsWritten),
    durationMs: Number(f.durationMs),
    cronRowsRead: c.d1.rowsRead,
    cronRowsWritten: c.d1.rowsWritten,
  };
}

async function signIn(dev: DevServer): Promise<string> {
  const res = await fetch(`${dev.base}/admin/sign-in`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", origin: dev.base },
    body: "userId=usr_demo_owner",
    redirect: "manual",
  });
  const cookie = res.headers.get("set-cookie");
  if (res.status !== 303 || !cookie) throw new Error(`dev sign-in failed: HTTP ${res.status}`);
  return cookie.split(";")[0]!;
}

async function adminCost(dev: DevServer, client: BenchClient, cookie: string, before?: string): Promise<AdminCost> {
  const queryMs: number[] = [];
  const pageMs: number[] = [];
  let last: { rows: number; tiles: Record<string, number>; d1: { rowsRead: number }; poll: AdminCost["poll"] } | undefined;
  let requestRowsRead = 0;
  for (let i = 0; i < 5; i++) {
    const r = await client.bench<{ ms: number; rows: number; tiles: Record<string, number>; d1: { rowsRead: number }; poll: AdminCost["poll"] }>("/operations-page", {
      workspaceId: WORKSPACE,
      limit: PAGE,
      ...(before ? { before } : {}),
    });
    queryMs.push(r.ms);
    last = r;
    await client.resetCounters();
    const started = performance.now();
    const res = await fetch(`${dev.base}/admin/operations${before ? `?cursor=${before}` : ""}`, { headers: { cookie } });
    const html = await res.text();
    pageMs.push(performance.now() - started);
    if (res.status !== 200 || !html.includes("run_")) throw new Error(`admin page: HTTP ${res.status}`);
    requestRowsRead = (await client.counters()).d1.rowsRead;
  }
  return {
    rowsRead: last!.d1.rowsRead,
    requestRowsRead,
    queryMs: median(queryMs),
    pageMs: median(pageMs),
    rows: last!.rows,
    tiles: last!.tiles,
    poll: last!.poll,
  };
}

export async function history(sizes: readonly number[]): Promise<HistoryResult> {
  return withInstance("history", {}, async (dev, client) => {
    const base = Date.now() - 60_000;
    const points: HistoryPoint[] = [];
    const cookie = await signIn(dev);
    let seeded = 0;
    for (const [i, size] of [...sizes].sort((a, b) => a - b).entries()) {
      const seedStarted = Date.now();
      await seedHistory(client, seeded + 1, size, base);
      seeded = size;
      const seedMs = Date.now() - seedStarted;
      const ins = await client.sqlMeta(OVERDUE_SQL, [OVERDUE, i, Date.now(), WORKSPACE]);
      if (ins.meta.changes !== OVERDUE) throw new Error(`overdue insert: ${ins.meta.changes}`);
      const sweep = await fireSweep(dev, client);
      // Since the dispatch model, an overdue queued run that no tracker holds is adopted (its tracker dispatches it), not failed.
      if (sweep.reconciled + sweep.adopted !== OVERDUE) {
        throw new Error(`the sweep resolved ${sweep.reconciled} + adopted ${sweep.adopted} of ${OVERDUE} overdue runs`);
      }
      const idleSweep = await fireSweep(dev, client);
      const depth = Math.floor(size * 0.9);
      const [deep] = await client.sql<{ id: string }>(
        "SELECT id FROM operation_runs WHERE workspace_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
        [WORKSPACE, depth],
        600_000,
      );
      // Let the adopted runs finish (their trackers dispatch them), so the admin is measured on a quiet
      // workspace: the 5 fresh queued runs below are then its only live runs, and a poll sees no transition.
      await quiesce(client);
      // The failure tiles' counters, as migration 0010's backfill builds them from the runs (the last 25 h).
      const rebuild = rebuildFailureCountsSql(Date.now() - 25 * 3_600_000);
      await client.sqlMeta(rebuild.sql, rebuild.params);
      const live = await client.sqlMeta(LIVE_SQL, [Date.now(), i, WORKSPACE]);
      if (live.meta.changes !== 5) throw new Error(`live insert: ${live.meta.changes}`);
      const adminFirst = await adminCost(dev, client, cookie);
      const adminDeep = { ...(await adminCost(dev, client, cookie, deep!.id)), depth };
      points.push({ terminalRuns: size, seedMs, sweep, idleSweep, adminFirst, adminDeep });
      console.log(
        `  history ${size.toLocaleString("en-US")}: seeded in ${seedMs} ms; sweep read ${sweep.rowsRead} / wrote ${sweep.rowsWritten}; ` +
          `admin first page read ${adminFirst.rowsRead}, deep read ${adminDeep.rowsRead}, quiet poll read ${adminFirst.poll.d1.rowsRead} (${adminFirst.poll.kind})`,
      );
    }
    const a = points[0]!;
    const b = points[points.length - 1]!;
    const sweepReadGrowth = b.sweep.rowsRead - a.sweep.rowsRead;
    const sweepWriteGrowth = b.sweep.rowsWritten - a.sweep.rowsWritten;
    // Flat: what a sweep of 100 overdue runs reads may not grow with history beyond
    // D1's accounting slack (a few rows), nor with the 100x larger table.
    const flat = Math.abs(sweepReadGrowth) <= 5 && Math.abs(sweepWriteGrowth) <= 5;
    return { points, sweepReadGrowth, sweepWriteGrowth, flat };
  });
}

