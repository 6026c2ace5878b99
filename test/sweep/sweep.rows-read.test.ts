/**
 * Rows read per sweep grow with the overdue runs, never with the table
 * (contract section 4.2): 50,000 terminal runs of history and 2,000 live runs
 * not yet due sit beside 5 overdue ones, and the sweep's D1 cost, as D1
 * itself reports it (`meta.rows_read`), stays within a per-overdue-run bound.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { overdueRuns } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { createQueued, createRunning, GRACE_MS, makeOverdue, reconciledTotal, storedRow, sweep, unableTracker } from "../support/sweep";

const HISTORY = 50_000;
const LIVE_NOT_DUE = 2_000;
const OVERDUE = 5;

/**
 * Reads per overdue run, as D1 counts them: the overdue read returns it (1)
 * and the compare-and-set update finds it by id (1; its CHECKs are `=`
 * comparisons, which read nothing); the tracker check reads nothing
 * from D1, and neither do the guarded audit, failure-counter and outbox
 * inserts here, where the workspace has no webhook endpoint
 * (test/sweep/sweep.statement-cost.test.ts has them statement by statement).
 */
const READS_PER_RUN = 2;
/** The row at which the overdue index scan stops (1), and slack for D1's accounting. */
const CONSTANT = 4;
/**
 * Per run: the update (the row and the index entries its status and outcome
 * move) and the audit event with its workspace index entry: 5 with today's
 * shapes (test/runs/write-cost.test.ts pins it); 6 leaves room for one more
 * index entry without hiding a per-table cost.
 */
const WRITES_PER_RUN = 6;

/** Insert `count` rows in one statement from a recursive CTE (ids are generated here, never from input). */
async function insertGenerated(ws: string, count: number, kind: "terminal" | "live"): Promise<void> {
  const now = Date.now();
  const terminal = kind === "terminal";
  const sql = `
    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
    INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress,
      created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message,
      diagnostics, reconciled_by, idempotency_key, initiator, updated_at)
    SELECT printf('run_%s%020d', ?2, x), ?3, 'demo.work',
      ${terminal ? "'completed', 'succeeded', 1" : "'queued', 'pending', 0"}, 3,
      '{"steps":1,"stepMs":0}', '{"total":1,"processed":1,"succeeded":1,"failed":0}',
      ?4 - x * 1000, ${terminal ? "?4 - x * 1000 + 10" : "NULL"}, ${terminal ? "?4 - x * 1000 + 500" : "NULL"}, NULL,
      ${terminal ? "NULL" : "?4 + 3600000 + x"}, NULL, NULL,
      '{"attempts":[]}', NULL, NULL, 'user:seed', ?4
    FROM n`;
  const res = await env.DB.prepare(sql).bind(count, terminal ? "0HISTORY" : "0LIVEDUE", ws, now).run();
  expect(res.meta.changes).toBe(count);
}

it(
  `sweep rows read grow with overdue runs (${OVERDUE}), not with ${HISTORY.toLocaleString("en-US")} terminal runs`,
  async () => {
    const ws = await makeWorkspace("rows-read");
    const seedStarted = Date.now();
    await insertGenerated(ws, HISTORY, "terminal");
    await insertGenerated(ws, LIVE_NOT_DUE, "live");
    const overdue: string[] = [];
    for (let i = 0; i < OVERDUE; i++) {
      const run = i % 2 === 0 ? await createQueued(ws) : await createRunning(ws);
      await makeOverdue(run.id, 1_000 + i);
      overdue.push(run.id);
    }
    const seedMs = Date.now() - seedStarted;
    const total = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(ws).first<{ n: number }>();
    expect(total?.n).toBe(HISTORY + LIVE_NOT_DUE + OVERDUE);

    // The overdue read alone: the partial deadline index yields only the overdue rows.
    const read = await overdueRuns(env.DB, Date.now() - GRACE_MS, 50);
    expect(read.runs.map((r) => r.id).sort()).toEqual([...overdue].sort());
    expect(read.rowsRead).toBeLessThanOrEqual(OVERDUE + 1);

    const report = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(report).toMatchObject({ examined: OVERDUE, failed: 0, lostRace: 0, stoppedBy: "drained" });
    expect(reconciledTotal(report)).toBe(OVERDUE);
    for (const id of overdue) expect((await storedRow(id)).status).toBe("completed");

    const bound = OVERDUE * READS_PER_RUN + CONSTANT;
    console.log(
      `sweep rows read: ${report.d1.rowsRead} for ${OVERDUE} overdue among ${HISTORY.toLocaleString("en-US")} terminal ` +
        `and ${LIVE_NOT_DUE.toLocaleString("en-US")} live-not-due runs (bound ${bound}); overdueRuns rows read: ${read.rowsRead}; ` +
        `rows written: ${report.d1.rowsWritten}; round trips: ${report.d1.roundTrips}; seeded in ${seedMs} ms`,
    );
    expect(report.d1.rowsRead).toBeGreaterThanOrEqual(OVERDUE);
    expect(report.d1.rowsRead).toBeLessThanOrEqual(bound);
    expect(report.d1.rowsWritten).toBeGreaterThan(0);
    expect(report.d1.rowsWritten).toBeLessThanOrEqual(OVERDUE * WRITES_PER_RUN);

    // A second sweep over the same table, now with nothing overdue, reads next to nothing.
    const idle = await sweep({ tracker: unableTracker("rejects").tracker });
    console.log(`idle sweep rows read: ${idle.d1.rowsRead}, rows written: ${idle.d1.rowsWritten}`);
    expect(idle).toMatchObject({ examined: 0, stoppedBy: "drained" });
    expect(idle.d1.rowsRead).toBeLessThanOrEqual(1);
    expect(idle.d1.rowsWritten).toBe(0);
  },
  30_000,
);
