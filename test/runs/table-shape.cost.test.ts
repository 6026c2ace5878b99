/**
 * What the sweep's reconciliation would read under other table shapes, in
 * scratch tables of this file's own D1 (no migration): `operation_runs` as
 * migrated, copied from `sqlite_master` under another name, then changed one
 * way at a time, and the real run service pointed at the copy by renaming the
 * table in its SQL. D1's `meta.rows_read` of each statement is the measure.
 *
 * What it shows: of the 4 rows the compare-and-set UPDATE reads on today's
 * shape, 3 are its CHECK constraints. SQLite tests an `IN` list of three or
 * more constants against a temporary b-tree built for the statement, and
 * rewinds it at each test; D1 bills each rewind as a row read. The same
 * constraints written as `=` comparisons read nothing, which leaves the seek
 * by id. `WITHOUT ROWID` changes neither number.
 */
import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { auditEventSql, overdueRuns, RunService, type RunRecord } from "../../src/runs";
import { statementRecorder } from "../support/d1";
import { makeWorkspace } from "../support/fixtures";
import { newRun } from "../support/runs";

/** `"col" IN ('a', 'b', …)` as `("col" = 'a' OR "col" = 'b' OR …)`: the same constraint, without an IN list. */
function withoutInLists(ddl: string): string {
  return ddl.replace(/"(\w+)" IN \(([^)]*)\)/g, (_, column: string, list: string) =>
    `(${list.split(",").map((value) => `"${column}" = ${value.trim()}`).join(" OR ")})`,
  );
}

interface Shape {
  table: string;
  change: (ddl: string) => string;
}

const SHAPES = {
  today: { table: "scratch_runs_today", change: (ddl: string) => ddl },
  noInLists: { table: "scratch_runs_no_in", change: withoutInLists },
  withoutRowid: { table: "scratch_runs_wr", change: (ddl: string) => `${ddl} WITHOUT ROWID` },
  withoutRowidNoInLists: { table: "scratch_runs_wr_no_in", change: (ddl: string) => `${withoutInLists(ddl)} WITHOUT ROWID` },
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

  it("today 4 (the seek by id and three IN-list CHECKs); CHECKs without IN lists 1; WITHOUT ROWID changes neither", async () => {
    const costs: Record<string, ShapeCost> = {};
    for (const [name, shape] of Object.entries(SHAPES)) costs[name] = await measure(shape);
    console.log(JSON.stringify({ event: "table_shape.cost", costs }));
    expect(costs.today).toMatchObject({ overdueRead: 1, reconcile: 4 });
    expect(costs.noInLists).toMatchObject({ overdueRead: 1, reconcile: 1 });
    expect(costs.withoutRowid).toMatchObject({ overdueRead: 1, reconcile: 4 });
    expect(costs.withoutRowidNoInLists).toMatchObject({ overdueRead: 1, reconcile: 1 });
    // Every transition that sets `status` pays for its CHECK, RETURNING adds 1: the claim and completion too.
    for (const name of ["claim", "complete"] as const) expect(costs.noInLists![name]).toBeLessThan(costs.today![name]);
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
