/**
 * What a transition's compare-and-set reads under other shapes of
 * `operation_runs`, in scratch tables of this file's own D1 (no migration):
 * the table as migrated, copied from `sqlite_master` under another name, then
 * changed one way at a time, and the real run service pointed at the copy by
 * renaming the table in its SQL. D1's `meta.rows_read` of each statement is
 * the measure.
 *
 * What it shows: with the CHECKs' enumerations written as `IN` lists (as
 * before migration 0013), 3 of the 4 rows the sweep's UPDATE read were its
 * CHECK constraints. SQLite tests an `IN` list of three or more constants
 * against a temporary b-tree built for the statement, and rewinds it at each
 * test; D1 bills each rewind as a row read. As migrated (`=` comparisons) the
 * UPDATE reads only the row it seeks by id. `WITHOUT ROWID` (0013) changes
 * neither number.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { auditEventSql, overdueRuns, RunService, type RunRecord } from "../../src/runs";
import { statementRecorder } from "../support/d1";
import { makeWorkspace } from "../support/fixtures";
import { newRun } from "../support/runs";

/** `("col" = 'a' OR "col" = 'b' OR …)` back as `"col" IN ('a', 'b', …)`: the same constraint, as an IN list. */
function withInLists(ddl: string): string {
  return ddl.replace(/"(\w+)" = '\w+'(?: OR "\1" = '\w+')+/g, (match: string, column: string) => {
    const values = [...match.matchAll(/= ('\w+')/g)].map((m) => m[1]);
    return `"${column}" IN (${values.join(", ")})`;
  });
}

const withRowid = (ddl: string): string => ddl.replace(/\)\s*WITHOUT ROWID\s*$/i, ")");

interface Shape {
  table: string;
  change: (ddl: string) => string;
}

const SHAPES = {
  migrated: { table: "scratch_runs_migrated", change: (ddl: string) => ddl },
  inLists: { table: "scratch_runs_in", change: withInLists },
  rowid: { table: "scratch_runs_rowid", change: withRowid },
  rowidInLists: { table: "scratch_runs_rowid_in", change: (ddl: string) => withInLists(withRowid(ddl)) },
} satisfies Record<string, Shape>;

/** Create `shape.table` with operation_runs' columns, constraints and indexes, changed by `shape.change`. */
async function createShape(shape: Shape): Promise<void> {
  const { results } = await env.DB.prepare("SELECT type, sql FROM sqlite_master WHERE tbl_name = 'operation_runs' AND sql IS NOT NULL").all<{ type: string; sql: string }>();
  const rename = (sql: string) => sql.replaceAll("operation_runs", shape.table);
  const table = results.find((r) => r.type === "table")!;
  const statements = [shape.change(rename(table.sql)), ...results.filter((r) => r.type === "index").map((r) => rename(r.sql))];
  await env.DB.batch(statements.map((sql) => env.DB.prepare(sql)));
}

/** The real D1 with `operation_runs` in every statement's SQL read as `table`. */
function renamedRuns(table: string): D1Database {
  const rename = (sql: string) => sql.replace(/\boperation_runs\b/g, table);
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => target.prepare(rename(sql));
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The sweep's call on a running run: fenced on its deadline, with the run as the snapshot. */
function reconcileAsSweep(svc: RunService, run: RunRecord) {
  return svc.reconcile(run.id, {
    detector: "sweep",
    reason: "lifecycle.stale_running",
    observed: { status: "running", attempt: run.attempt, deadlineAt: run.deadlineAt },
    snapshot: run,
    evidence: {},
  });
}

interface ShapeCost {
  /** The overdue read, per row. */
  overdueRead: number;
  /** The compare-and-set UPDATE of a reconciliation, and of a claim and a completion (these with RETURNING). */
  reconcile: number;
  claim: number;
  complete: number;
}

async function measure(shape: Shape): Promise<ShapeCost> {
  const ws = await makeWorkspace(shape.table);
  const recorder = statementRecorder(renamedRuns(shape.table));
  const svc = new RunService(recorder.db, { policyFor, settings: DEFAULT_SETTINGS });
  const updateReads = () => recorder.calls.at(-1)![0]!.rowsRead;

  const swept = await newRun(svc, ws);
  const claimed = await svc.claim(swept.id, 1, 1);
  if (!claimed.ok) throw new Error(`claim refused: ${claimed.refusal}`);
  const claim = updateReads();
  const finished = await newRun(svc, ws);
  await svc.claim(finished.id, 1, 1);
  expect((await svc.complete(finished.id, 1, { outcome: "succeeded" })).ok).toBe(true);
  const complete = updateReads();

  // Every live run of the copy is "overdue" a day from now: the read returns the one left running.
  const read = await overdueRuns(recorder.db, Date.now() + 86_400_000, 50);
  expect(read.runs.map((r) => r.id)).toEqual([swept.id]);
  const answer = await reconcileAsSweep(svc, read.runs[0]!);
  expect(answer).toMatchObject({ ok: true, run: { status: "completed", reconciledBy: "sweep" } });
  return { overdueRead: read.rowsRead / read.runs.length, reconcile: updateReads(), claim, complete };
}

describe("rows read by the sweep's compare-and-set under other shapes of operation_runs", () => {
  beforeAll(async () => {
    for (const shape of Object.values(SHAPES)) await createShape(shape);
  });

  it("as migrated 1 (the seek by id); with the CHECKs as IN lists 4; WITHOUT ROWID changes neither", async () => {
    const costs: Record<string, ShapeCost> = {};
    for (const [name, shape] of Object.entries(SHAPES)) costs[name] = await measure(shape);
    console.log(JSON.stringify({ event: "table_shape.cost", costs }));
    expect(costs.migrated).toMatchObject({ overdueRead: 1, reconcile: 1 });
    expect(costs.inLists).toMatchObject({ overdueRead: 1, reconcile: 4 });
    expect(costs.rowid).toMatchObject({ overdueRead: 1, reconcile: 1 });
    expect(costs.rowidInLists).toMatchObject({ overdueRead: 1, reconcile: 4 });
    // Every transition that sets `status` pays for its IN-list CHECKs: the claim and completion too.
    for (const name of ["claim", "complete"] as const) expect(costs.migrated![name]).toBeLessThan(costs.inLists![name]);
  });

  it("the transition's guarded audit insert reads nothing, with `audit_events` as today or WITHOUT ROWID keyed by subject", async () => {
    await env.DB.prepare(
      `CREATE TABLE scratch_audit_wr (id text NOT NULL, workspace_id text NOT NULL REFERENCES workspaces(id), actor text NOT NULL,
         action text NOT NULL, subject_type text NOT NULL, subject_id text NOT NULL, metadata text NOT NULL, created_at integer NOT NULL,
         PRIMARY KEY (subject_type, subject_id, id)) WITHOUT ROWID`,
    ).run();
    await env.DB.prepare("CREATE INDEX scratch_audit_wr_workspace_id_idx ON scratch_audit_wr (workspace_id, id)").run();
    const ws = await makeWorkspace("audit-shape");
    const costs: Record<string, { rowsRead: number; rowsWritten: number }> = {};
    for (const table of ["audit_events", "scratch_audit_wr"]) {
      const insert = auditEventSql(
        { workspaceId: ws, actor: "system:sweep", action: "run.failed", subjectType: "run", subjectId: `run_${table}`, metadata: {}, createdAt: Date.now() },
        { ifWon: true },
      );
      // After a statement that changed one row, as the transition's compare-and-set does.
      const [, result] = await env.DB.batch([
        env.DB.prepare("UPDATE workspaces SET name = name WHERE id = ?").bind(ws),
        env.DB.prepare(insert.sql.replace("audit_events", table)).bind(...insert.params),
      ]);
      expect(result!.meta.changes).toBe(1);
      costs[table] = { rowsRead: result!.meta.rows_read, rowsWritten: result!.meta.rows_written };
    }
    console.log(JSON.stringify({ event: "table_shape.audit_cost", costs }));
    expect(costs.audit_events!.rowsRead).toBe(0);
    expect(costs.scratch_audit_wr!.rowsRead).toBe(0);
  });
});
