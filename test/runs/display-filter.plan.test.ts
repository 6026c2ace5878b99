/**
 * Display-state filters stay bounded by their answer: a rare completed state
 * ("Failed · reconciled") among thousands of succeeded runs reads only the
 * reconciled runs, through the indexes written for it.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { DEFAULT_SETTINGS, type DisplayStateKind } from "../../src/lifecycle";
import { registeredPolicies } from "../../src/operations";
import { displayStateCondition, listRuns, listRunsQuery } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";

async function bulk(ws: string, prefix: string, count: number, outcome: string, reconciledBy: string | null, reason: string | null) {
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress,
       created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message,
       diagnostics, reconciled_by, idempotency_key, initiator, updated_at)
     SELECT ?2 || printf('%06d', i), ?3, 'demo.work', 'completed', ?4, 1, 3, '{}', '{}',
       1000 + i, 1000, 2000, NULL, NULL, ?5, NULL, '{"attempts":[]}', ?6, NULL, 'system:bulk', 1000 + i
     FROM n`,
  )
    .bind(count, prefix, ws, outcome, reason, reconciledBy)
    .run();
}

const cases: Array<[DisplayStateKind, number]> = [
  ["failed_reconciled", 4],
  ["failed", 5],
  ["partially_succeeded", 0],
];
const OUTCOME_INDEX = /operation_runs_workspace_outcome_id_idx/;
/** Both failed kinds scan the 9 failed runs; nothing else. */
const FAILED_RUNS = 9;

it.each(cases)("%s reads only its outcome's rows among 3,000 succeeded ones", async (kind, expected) => {
  const ws = await makeWorkspace(kind);
  const p = `run_${cases.findIndex(([k]) => k === kind)}`;
  await bulk(ws, `${p}A`, 3000, "succeeded", null, null);
  await bulk(ws, `${p}B`, 4, "failed", "sweep", "lifecycle.stale_running");
  await bulk(ws, `${p}C`, 5, "failed", null, "handler.error");
  const where = displayStateCondition(kind, registeredPolicies(), DEFAULT_SETTINGS, Date.now());
  const q = listRunsQuery(ws, { limit: 20, where });
  const plan = await env.DB.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).bind(...q.params).all<{ detail: string }>();
  const detail = plan.results.map((r) => r.detail).join("\n");
  expect(detail).toMatch(OUTCOME_INDEX);
  expect(detail).not.toMatch(/TEMP B-TREE/);
  const page = await listRuns(env.DB, ws, { limit: 20, where });
  expect(page.runs).toHaveLength(expected);
  console.log(`display=${kind}: ${page.runs.length} runs, rows read ${page.rowsRead} (3,009 runs in the workspace)`);
  // D1 may count an index entry and its table row for each failed run: never the succeeded ones.
  expect(page.rowsRead).toBeLessThanOrEqual(2 * FAILED_RUNS + 1);
});
