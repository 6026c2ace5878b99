/**
 * What the operations page costs in D1, as D1 itself reports it
 * (`meta.rows_read`, round trips counted by meteredDb): one batch for tiles
 * and a page, rows read bounded by the page size, the live runs the tiles
 * scan (at most the LIVE_SCAN oldest live runs) and the hours of the day that had a
 * failure (at most 25) — never by the history nor by the day's failure
 * volume. 2,000 terminal runs sit beside a few live ones; through the route,
 * the whole request's round trips are the same for 10 runs as for 2,000.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { operationsPage, type OperationsFilter } from "../../src/admin/queries";
import { LIVE_SCAN } from "../../src/admin/tiles";
import { meteredDb, rebuildFailureCountsSql } from "../../src/runs";
import { makeWorkspace, runService, stopClock } from "../support/fixtures";
import { batchRecorder } from "../support/d1";
import {
  clientFor,
  createExecutionFailure,
  createQueued,
  createRunning,
  devEnv,
  insertTerminalRuns,
  one,
  PAGE_SIZE,
  parseHtml,
  seedUser,
  signIn,
} from "../support/admin";

const DAY = 86_400_000;
const HISTORY = 2_000;
/** Every 10th historical run failed, two days ago: outside the 24 h tiles. */
const FAILED_EVERY = 10;
const QUEUED = 3;
const RUNNING = 2;
const RECENT_FAILURES = 3;
const LIVE = QUEUED + RUNNING;
/**
 * Rows D1 counts beyond the rows a scan returns: the index entry at which a
 * range scan stops, per scan. The listing is one scan; the tiles are three
 * (oldest queued runs, oldest running runs, the failure counters).
 */
const SCAN_END = 1;
/** The listing: one page plus the row that says there is more, and where its scan ends. */
const LISTING_BOUND = PAGE_SIZE + 1 + SCAN_END;
/** The live tiles: the live runs they scan, at most LIVE_SCAN, and where the scan ends. */
const liveBound = (live: number) => Math.min(live, LIVE_SCAN) + SCAN_END;
/** The failure tiles: one counter row per hour with a failure, 25 hours at most. */
const FAILURES_BOUND = 25 + SCAN_END;
/** The target for one page view, whatever the day's failure volume (issue 12). */
const VIEW_BUDGET = 100;
/** Auth, per request: the user by primary key, then the memberships with their workspaces. */
const AUTH_ROUND_TRIPS = 2;

/** A workspace with `history` terminal runs two days old, recent failures and live runs. */
async function workspaceWith(history: number): Promise<string> {
  const svc = runService();
  const ws = await makeWorkspace(`cost-${history}`);
  const seeded = Date.now();
  await insertTerminalRuns(ws, { count: history, createdAt: seeded - 3 * DAY, completedAt: seeded - 2 * DAY, failedEvery: FAILED_EVERY });
  await Promise.all([
    ...Array.from({ length: RECENT_FAILURES }, () => createExecutionFailure(svc, ws)),
    ...Array.from({ length: QUEUED }, () => createQueued(svc, ws)),
    ...Array.from({ length: RUNNING }, () => createRunning(svc, ws)),
  ]);
  const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(ws).first<{ n: number }>();
  expect(n?.n).toBe(history + RECENT_FAILURES + LIVE);
  return ws;
}

/** operationsPage over a metered D1, with each statement's rows read. */
async function measured(ws: string, filter: Partial<OperationsFilter> = {}) {
  const recorder = batchRecorder(env.DB);
  const metered = meteredDb(recorder.db);
  const page = await operationsPage(metered.db, ws, { limit: PAGE_SIZE, ...filter }, Date.now());
  expect(recorder.batches, "statements per batch").toHaveLength(1);
  const [liveRows, failureRows, listingRows, tokenRows] = recorder.batches[0]!;
  // The live poll's change token: the workspace's newest audit event, one index entry.
  expect(tokenRows).toBeLessThanOrEqual(1);
  return { page, cost: metered.cost, liveRows: liveRows!, failureRows: failureRows!, tilesRows: liveRows! + failureRows! + tokenRows!, listingRows: listingRows! };
}

describe(`operationsPage among ${HISTORY.toLocaleString("en-US")} terminal runs`, () => {
  it("answers in one D1 round trip, reading one page plus one for the listing and the live runs for the tiles", async () => {
    const ws = await workspaceWith(HISTORY);
    const m = await measured(ws);
    console.log(
      `operations page: ${m.cost.rowsRead} rows read (listing ${m.listingRows}, tiles ${m.tilesRows}), ${m.cost.roundTrips} round trip, ` +
        `among ${HISTORY.toLocaleString("en-US")} terminal + ${RECENT_FAILURES} recent failures + ${LIVE} live runs`,
    );
    expect(m.cost.roundTrips).toBe(1);
    expect(m.page.runs).toHaveLength(PAGE_SIZE);
    expect(m.page.nextCursor).toBe(m.page.runs[PAGE_SIZE - 1]!.id);
    expect(m.page.tiles).toMatchObject({ active: LIVE, retrying: 0, stale: 0, failures24h: RECENT_FAILURES, reconciledFailures24h: 0, liveCapped: false });

    expect(m.listingRows).toBeGreaterThanOrEqual(PAGE_SIZE);
    expect(m.listingRows).toBeLessThanOrEqual(LISTING_BOUND);
    expect(m.liveRows).toBeGreaterThanOrEqual(LIVE);
    expect(m.liveRows).toBeLessThanOrEqual(liveBound(LIVE));
    // The three recent failures are counted in their creation hour's counter (two rows if they straddle an hour).
    expect(m.failureRows).toBeGreaterThanOrEqual(1);
    expect(m.failureRows).toBeLessThanOrEqual(2 + SCAN_END);
    // The page's own figures are D1's.
    expect(m.page.d1).toEqual({ rowsRead: m.cost.rowsRead, roundTrips: 1 });
    expect(m.cost.rowsRead).toBe(m.listingRows + m.tilesRows);
  });

  it("a deep page (cursor in the middle of the history) costs what the first one does", async () => {
    const ws = await workspaceWith(HISTORY);
    const first = await measured(ws);
    // Walk to the middle of the history by keyset, then measure one page there.
    const mid = await env.DB.prepare("SELECT id FROM operation_runs WHERE workspace_id = ? ORDER BY id LIMIT 1 OFFSET ?")
      .bind(ws, HISTORY / 2)
      .first<{ id: string }>();
    const deep = await measured(ws, { before: mid!.id });
    console.log(`operations page at cursor ${HISTORY / 2} of ${HISTORY}: listing ${deep.listingRows} rows read, ${deep.cost.roundTrips} round trip`);
    expect(deep.page.runs.map((r) => r.id).every((id) => id < mid!.id)).toBe(true);
    expect(deep.page.runs).toHaveLength(PAGE_SIZE);
    expect(deep.cost.roundTrips).toBe(1);
    expect(deep.listingRows).toBeLessThanOrEqual(LISTING_BOUND);
    expect(deep.cost.rowsRead).toBeLessThanOrEqual(first.cost.rowsRead);
  });

  /**
   * Per display filter: how many runs match, and the listing's bound. "succeeded"
   * is decided by the outcome index alone; "failed" must also read each failed
   * run's reason_code and "queued" its deadline, so D1 may count an index entry
   * and its table row for each (as test/runs/display-filter.plan.test.ts allows).
   */
  const filtered = {
    succeeded: { matching: HISTORY - HISTORY / FAILED_EVERY, bound: LISTING_BOUND },
    failed: { matching: HISTORY / FAILED_EVERY + RECENT_FAILURES, bound: 2 * (PAGE_SIZE + 1) + SCAN_END },
    queued: { matching: QUEUED, bound: 2 * (QUEUED + 1) + SCAN_END },
  } as const;

  it.each(Object.keys(filtered) as Array<keyof typeof filtered>)(
    "display=%s reads only its own runs, bounded by the page, not the history",
    async (display) => {
      const ws = await workspaceWith(HISTORY);
      const m = await measured(ws, { display });
      const { matching, bound } = filtered[display];
      const shown = Math.min(matching, PAGE_SIZE);
      console.log(`operations page display=${display}: listing ${m.listingRows} rows read for ${shown} shown (bound ${bound}), ${m.cost.roundTrips} round trip`);
      expect(m.cost.roundTrips).toBe(1);
      expect(m.page.runs).toHaveLength(shown);
      expect(m.listingRows).toBeGreaterThanOrEqual(shown);
      expect(m.listingRows).toBeLessThanOrEqual(bound);
    },
  );
});

describe("through the route: the whole request's D1 cost does not grow with the runs", () => {
  async function requestCost(history: number) {
    const ws = await workspaceWith(history);
    const client = await signIn((await seedUser([[ws, "viewer"]])).id);
    const recorder = batchRecorder(env.DB);
    const metered = meteredDb(recorder.db);
    client.bindings = devEnv({ DB: metered.db });
    const html = await client.html("/admin/operations");
    const shown = (await parseHtml(html, "tr[data-run-id]")).length;
    return { ...metered.cost, batches: recorder.batches.length, shown };
  }

  it(`10 runs and ${HISTORY.toLocaleString("en-US")} runs: the same round trips (auth lookups + one page batch)`, async () => {
    const small = await requestCost(10);
    const large = await requestCost(HISTORY);
    console.log(
      `GET /admin/operations: 10 runs → ${small.roundTrips} round trips, ${small.rowsRead} rows read; ` +
        `${HISTORY.toLocaleString("en-US")} runs → ${large.roundTrips} round trips, ${large.rowsRead} rows read`,
    );
    expect(small.shown).toBe(10 + RECENT_FAILURES + LIVE);
    expect(large.shown).toBe(PAGE_SIZE);
    expect(small.roundTrips).toBe(AUTH_ROUND_TRIPS + 1);
    expect(large.roundTrips).toBe(small.roundTrips);
    expect([small.batches, large.batches]).toEqual([1, 1]);
    // The only difference is how full the page is.
    expect(large.rowsRead - small.rowsRead).toBeLessThanOrEqual(PAGE_SIZE + 1 - small.shown + SCAN_END + 1);
    expect(large.rowsRead).toBeLessThanOrEqual(LISTING_BOUND + liveBound(LIVE) + FAILURES_BOUND + 10);
  });
});

describe("the tiles' cost does not follow the day's failures or the live runs", () => {
  const DAY_FAILURES = 600;

  it(`${DAY_FAILURES} failures created in the last 24 h, spread over 20 hours: the failure tiles read one counter per hour`, async () => {
    const ws = await workspaceWith(100);
    const now = Date.now();
    // 30 failed runs in each of 20 hours, written as the migration's backfill counts them.
    for (let h = 1; h <= 20; h++) {
      await insertTerminalRuns(ws, { count: DAY_FAILURES / 20, createdAt: now - h * 3_600_000, completedAt: now - h * 3_600_000 + 60_000, failedEvery: 1 });
    }
    const rebuild = rebuildFailureCountsSql(now - 2 * DAY);
    await env.DB.prepare(rebuild.sql).bind(...rebuild.params).run();
    const m = await measured(ws);
    console.log(
      `operations page with ${DAY_FAILURES + RECENT_FAILURES} failures in 24 h: ${m.cost.rowsRead} rows read ` +
        `(listing ${m.listingRows}, live tiles ${m.liveRows}, failure tiles ${m.failureRows})`,
    );
    expect(m.page.tiles.failures24h).toBe(DAY_FAILURES + RECENT_FAILURES);
    expect(m.failureRows).toBeLessThanOrEqual(21 + 1 + SCAN_END);
    expect(m.cost.rowsRead).toBeLessThanOrEqual(VIEW_BUDGET);
  });

  it(`more live runs than the tiles read: the live tiles say "at least", reading the ${LIVE_SCAN} oldest`, async () => {
    const svc = runService();
    const ws = await makeWorkspace("cost-live-cap");
    const queued = LIVE_SCAN + 5;
    for (let i = 0; i < queued; i++) await createQueued(svc, ws);
    const m = await measured(ws);
    console.log(`operations page with ${queued} queued runs: live tiles read ${m.liveRows} rows, total ${m.cost.rowsRead}`);
    expect(m.page.tiles).toMatchObject({ active: LIVE_SCAN, liveCapped: true });
    expect(m.liveRows).toBeLessThanOrEqual(liveBound(queued));
    expect(m.cost.rowsRead).toBeLessThanOrEqual(VIEW_BUDGET);
    // On the page: a lower bound says so, and the failure tiles (exact counts) do not.
    const html = await (await clientFor(ws)).html("/admin/operations");
    expect((await one(html, '[data-tile="active"]')).text.trim()).toBe(`${LIVE_SCAN}+`);
    expect((await one(html, '[data-tile="failures"]')).text.trim()).toBe("0");
  });
});

describe("the failure tile counts exactly what its link lists", () => {
  it("a run created 24 h 20 min ago, inside the hour the window starts in: counted by the tile and listed by range=24h", async () => {
    const HOUR = 3_600_000;
    const now = Math.floor(Date.now() / HOUR) * HOUR + 30 * 60_000;
    const ws = await makeWorkspace("tile-window");
    // Created 24 h 20 min before `now`: after the top of the hour 24 h ago, before now − 24 h.
    const svc = runService(() => now - 24 * HOUR - 20 * 60_000);
    const old = await createExecutionFailure(svc, ws);
    stopClock(now);
    const client = await clientFor(ws);
    const page = await client.html("/admin/operations");
    expect((await one(page, '[data-tile="failures"]')).text.trim()).toBe("1");
    const href = (await one(page, "#tile-failures")).attrs.href!;
    const listed = await parseHtml(await client.html(href), "tr[data-run-id]");
    expect(listed.map((r) => r.attrs["data-run-id"])).toEqual([old]);
  });
});
