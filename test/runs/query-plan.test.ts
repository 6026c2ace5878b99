/**
 * The read queries hold to the indexes they are written for (EXPLAIN QUERY
 * PLAN on real D1), and rows read stay proportional to the answer, not to the
 * table: the sweep's cost grows with overdue runs, a listing page's with its
 * size.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OVERDUE_RUNS_SQL, listRuns, listRunsQuery, overdueRuns, type ListRunsFilter } from "../../src/runs";
import { EXPIRED_ORPHAN_EVENTS_SQL, EXPIRED_RUNS_SQL } from "../../src/sweep/retention";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { newRun } from "../support/runs";

/** Rows a query may read beyond its answer (the index probe that ends a range scan, and the like). */
const SLACK = 3;

async function plan(sql: string, params: unknown[]): Promise<string[]> {
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return res.results.map((r) => r.detail);
}

/**
 * Insert `count` runs in one statement (a recursive CTE; no bound-parameter
 * limits), ids `${prefix}000001`… so they sort in insertion order.
 * Completed runs have no deadline; live ones get `liveDeadline`.
 */
async function bulkInsert(workspaceId: string, prefix: string, count: number, status: "completed" | "queued", liveDeadline = 0): Promise<void> {
  const completed = status === "completed";
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress,
       created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message,
       diagnostics, reconciled_by, idempotency_key, initiator, updated_at)
     SELECT ?2 || printf('%06d', i), ?3, 'demo.work', ?4, ?5, ?6, 3, '{}', '{}',
       1000 + i, ?7, ?8, NULL, ?9, NULL, NULL, '{"attempts":[]}', NULL, NULL, 'system:bulk', 1000 + i
     FROM n`,
  )
    .bind(
      count,
      prefix,
      workspaceId,
      status,
      completed ? "succeeded" : "pending",
      completed ? 1 : 0,
      completed ? 1 : null,
      completed ? 2 : null,
      completed ? null : liveDeadline,
    )
    .run();
}

describe("EXPLAIN QUERY PLAN", () => {
  it("OVERDUE_RUNS_SQL searches the partial index operation_runs_deadline_live_idx, already in deadline order", async () => {
    const detail = await plan(OVERDUE_RUNS_SQL, [Date.now(), 100, -1, ""]);
    expect(detail).toEqual([expect.stringMatching(/^SEARCH operation_runs USING INDEX operation_runs_deadline_live_idx \(deadline_at>\? AND deadline_at<\?\)$/)]);
    expect(detail.join("\n")).not.toMatch(/TEMP B-TREE/);
  });

  it.each<[string, Omit<ListRunsFilter, "limit">, string]>([
    ["no filter", {}, "operation_runs_workspace_id_idx"],
    ["no filter, next page", { before: "run_Z" }, "operation_runs_workspace_id_idx"],
    // A live status ranges over the live runs only: (workspace, outcome 'pending', id).
    ["status", { status: "running" }, "operation_runs_workspace_outcome_id_idx"],
    ["status, next page", { status: "queued", before: "run_Z" }, "operation_runs_workspace_outcome_id_idx"],
    // Nearly every run is completed: the listing index, filtered, reads about a page.
    ["status completed", { status: "completed" }, "operation_runs_workspace_id_idx"],
    ["type", { type: "demo.work" }, "operation_runs_workspace_type_id_idx"],
    ["type, next page", { type: "demo.work", before: "run_Z" }, "operation_runs_workspace_type_id_idx"],
  ])("listRunsQuery (%s, filter %o) searches %s with no sort step", async (_name, filter, index) => {
    const q = listRunsQuery("ws_plan", { ...filter, limit: 20 });
    const detail = await plan(q.sql, q.params);
    expect(detail).toHaveLength(1);
    expect(detail[0]).toMatch(new RegExp(`^SEARCH operation_runs USING INDEX ${index} \\(workspace_id=\\?`));
    expect(detail.join("\n")).not.toMatch(/TEMP B-TREE FOR ORDER BY/);
  });
});

describe("EXPLAIN QUERY PLAN, retention", () => {
  it("EXPIRED_RUNS_SQL ranges over the primary key below the cutoff's id, in id order", async () => {
    const detail = await plan(EXPIRED_RUNS_SQL, ["run_01", Date.now(), 90]);
    expect(detail).toEqual([expect.stringMatching(/^SEARCH operation_runs USING PRIMARY KEY \(id<\?\)$/)]);
  });

  it("EXPIRED_ORPHAN_EVENTS_SQL ranges over the partial index of non-run events below the cutoff's id", async () => {
    const detail = (await plan(EXPIRED_ORPHAN_EVENTS_SQL, ["evt_01", 90])).join("\n");
    expect(detail).toMatch(/SEARCH audit_events USING COVERING INDEX audit_events_other_id_idx \(id<\?\)/);
    expect(detail).not.toMatch(/SCAN audit_events/);
  });
});

describe("rows read", () => {
  it("overdueRuns returns exactly the overdue runs, oldest deadline first, and reads no more rows with 2000 more terminal runs", async () => {
    const ws = await makeWorkspace("overdue");
    // overdueRuns is not scoped to a workspace: these clock values are far below any
    // Date.now(), and every other live run in this file has a deadline after `before`.
    const clock = manualClock(1_000);
    const svc = runService(clock.now);
    const a = await newRun(svc, ws); // queued, deadline 1_000 + staleQueued
    clock.set(2_000);
    const b = await newRun(svc, ws);
    clock.set(3_000);
    await svc.claim(b.id, 1); // running, deadline 3_000 + staleRunning (the earliest)
    clock.set(4_000);
    const c = await newRun(svc, ws);
    clock.set(10_000_000);
    const notYet = await newRun(svc, ws); // live, deadline in the future of `before`
    const before = 1_000_000;

    const small = await overdueRuns(env.DB, before, 100);
    await bulkInsert(ws, "run_0TERMINAL", 2000, "completed");
    const big = await overdueRuns(env.DB, before, 100);

    expect(big.runs.map((r) => r.id)).toEqual([b.id, a.id, c.id]);
    expect(big.runs.map((r) => r.id)).not.toContain(notYet.id);
    console.log(`overdueRuns: 3 overdue of 2004 rows (2000 terminal) → rows_read ${big.rowsRead} (before the 2000: ${small.rowsRead})`);
    expect(big.rowsRead).toBeLessThanOrEqual(3 + SLACK);
    // Grows with the overdue runs, never with history.
    expect(big.rowsRead).toBe(small.rowsRead);
    // The limit keeps the oldest deadlines (the sweep works through a backlog oldest first).
    const limited = await overdueRuns(env.DB, before, 2);
    expect(limited.runs.map((r) => r.id)).toEqual([b.id, a.id]);
    expect(limited.rowsRead).toBeLessThanOrEqual(2 + SLACK);
  });

  it("listRuns: a page of 20 out of 2000 reads about 21 rows, and nextCursor continues without overlap or gap", async () => {
    const ws = await makeWorkspace("list");
    const neighbour = await makeWorkspace("list-neighbour");
    await bulkInsert(ws, "run_1LIST", 2000, "completed");
    await bulkInsert(neighbour, "run_2LIST", 2000, "completed");

    const page1 = await listRuns(env.DB, ws, { limit: 20 });
    const page2 = await listRuns(env.DB, ws, { limit: 20, before: page1.nextCursor ?? "missing-cursor" });
    console.log(`listRuns: page of 20 in a workspace of 2000 (table 4000) → rows_read ${page1.rowsRead}; next page → ${page2.rowsRead}`);

    const expectedIds = (from: number) => Array.from({ length: 20 }, (_, k) => `run_1LIST${String(from - k).padStart(6, "0")}`);
    expect(page1.runs.map((r) => r.id)).toEqual(expectedIds(2000));
    expect(page1.nextCursor).toBe("run_1LIST001981");
    expect(page2.runs.map((r) => r.id)).toEqual(expectedIds(1980));
    expect(page1.rowsRead).toBeLessThanOrEqual(21 + SLACK);
    expect(page2.rowsRead).toBeLessThanOrEqual(21 + SLACK);
  });

  it("listRuns with a status filter reads about a page even when that status is rare in the workspace", async () => {
    const ws = await makeWorkspace("list-status");
    await bulkInsert(ws, "run_3DONE", 2000, "completed");
    await bulkInsert(ws, "run_4LIVE", 30, "queued", Number.MAX_SAFE_INTEGER);
    const page = await listRuns(env.DB, ws, { limit: 20, status: "queued" });
    console.log(`listRuns status=queued: page of 20 of 30 queued among 2030 → rows_read ${page.rowsRead}`);
    expect(page.runs).toHaveLength(20);
    expect(page.runs.every((r) => r.status === "queued")).toBe(true);
    expect(page.nextCursor).toBe("run_4LIVE000011");
    expect(page.rowsRead).toBeLessThanOrEqual(21 + SLACK);
  });

  it("paging to the end visits every run once, newest first, and the last page has no cursor", async () => {
    const ws = await makeWorkspace("list-all");
    const svc = runService();
    const created: string[] = [];
    for (let i = 0; i < 45; i++) created.push((await newRun(svc, ws)).id);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await listRuns(env.DB, ws, { limit: 20, ...(cursor ? { before: cursor } : {}) });
      seen.push(...page.runs.map((r) => r.id));
      cursor = page.nextCursor ?? undefined;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(created.toReversed());
  });
});
