/**
 * What the sweep reads per overdue run it reconciles, statement by statement,
 * as D1 itself counts it (`meta.rows_read` of each statement of the batch):
 *
 * - the overdue read: 1 per run (the partial deadline index, then the row);
 * - the compare-and-set UPDATE: 1, the seek by id. Its CHECK constraints
 *   are `=` comparisons (migration 0013): written as `IN` lists of three or
 *   more values they cost 1 each on a column the transition sets (`status`,
 *   `outcome`, `reconciled_by`), as SQLite tests such a list against a
 *   temporary b-tree and D1 bills its rewind as a row read
 *   (test/runs/table-shape.cost.test.ts measures the same UPDATE on other
 *   shapes). No `RETURNING`: the answer is built from the sweep's own read
 *   and the SET list, where a `RETURNING` would cost 1 more;
 * - the audit event, the failure counter and the webhook outbox, each guarded
 *   by `changes() = 1`: 0. So is the read of the endpoints the outbox wrote
 *   for, where the workspace has none (1 per delivery where it has some); a
 *   `RETURNING` on the outbox insert cost 2 even with no endpoint.
 *
 * 2 per reconciled run in all, where it was 8 (the answer and the outbox
 * read back through `RETURNING`, and the IN-list CHECKs). The sweep asks the tracker first, which
 * reads nothing from D1, and does not read the run again.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService, type RunRecord } from "../../src/runs";
import { statementRecorder, type StatementCost } from "../support/d1";
import { makeWorkspace } from "../support/fixtures";
import { createQueued, createRunning, drainOverdue, makeOverdue, reconciledTotal, sweep, unableTracker } from "../support/sweep";
import { deliveriesOf, delayRecorder, seedEndpoint } from "../support/webhooks";

/** A statement by its verb and table, e.g. "UPDATE operation_runs". */
function label(sql: string): string {
  const flat = sql.replace(/\s+/g, " ").trim();
  return /^(UPDATE \w+|INSERT INTO \w+|SELECT (?:.(?! FROM ))*. FROM \w+)/.exec(flat)?.[1] ?? flat.slice(0, 40);
}

function readsOf(call: StatementCost[]): [string, number][] {
  return call.map((s) => [label(s.sql), s.rowsRead]);
}

/** The reconciliation batch of a run whose workspace has no webhook endpoint, statement by statement. */
const RECONCILE_BATCH: [string, number][] = [
  ["UPDATE operation_runs", 1],
  ["INSERT INTO audit_events", 0],
  ["INSERT INTO run_failure_counts", 0],
  ["INSERT INTO webhook_deliveries", 0],
  ["SELECT endpoint_id FROM webhook_deliveries", 0],
];

/** Rows read per reconciled overdue run: the overdue read (1) and the batch. */
const READS_PER_RECONCILED_RUN = 1 + RECONCILE_BATCH.reduce((sum, [, reads]) => sum + reads, 0);

beforeEach(drainOverdue);

describe("rows read per overdue run the sweep reconciles", () => {
  it(`the overdue read 1, the compare-and-set 1, the event, counter and outbox 0: ${READS_PER_RECONCILED_RUN} per run`, async () => {
    const ws = await makeWorkspace("statement-cost");
    const runs = [await createQueued(ws), await createRunning(ws), await createRunning(ws)];
    for (const [i, run] of runs.entries()) await makeOverdue(run.id, 1_000 + i);
    const recorder = statementRecorder();

    const report = await sweep({ tracker: unableTracker("rejects").tracker }, recorder.db);
    expect(report).toMatchObject({ examined: runs.length, failed: 0, lostRace: 0, stoppedBy: "drained" });
    expect(reconciledTotal(report)).toBe(runs.length);

    const [overdueRead, ...batches] = recorder.calls;
    expect(overdueRead).toHaveLength(1);
    expect(label(overdueRead![0]!.sql)).toMatch(/^SELECT .* FROM operation_runs$/);
    // One row read per overdue run, and at most one more where the index range ends.
    expect(overdueRead![0]!.rowsRead).toBeGreaterThanOrEqual(runs.length);
    expect(overdueRead![0]!.rowsRead).toBeLessThanOrEqual(runs.length + 1);
    // One round trip per run, nothing read again: the batch alone.
    expect(batches).toHaveLength(runs.length);
    for (const batch of batches) expect(readsOf(batch)).toEqual(RECONCILE_BATCH);

    expect(report.d1.rowsRead).toBe(recorder.calls.flat().reduce((sum, s) => sum + s.rowsRead, 0));
    expect(report.d1.rowsRead).toBeLessThanOrEqual(runs.length * READS_PER_RECONCILED_RUN + 1);
    console.log(
      JSON.stringify({ event: "sweep.statement_cost", overdueRead: overdueRead![0]!.rowsRead, batch: readsOf(batches[0]!), perRun: READS_PER_RECONCILED_RUN, report: report.d1 }),
    );
  });
});

describe("the reconciliation's answer without reading the row back", () => {
  /** The sweep's call: fenced on the deadline it read, with the run it read as the snapshot. */
  function reconcileAsSweep(svc: RunService, run: RunRecord) {
    return svc.reconcile(run.id, {
      detector: "sweep",
      reason: run.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running",
      observed: { status: run.status === "queued" ? "queued" : "running", attempt: run.attempt, deadlineAt: run.deadlineAt },
      snapshot: run,
      evidence: { detectedAt: Date.now() },
      progress: { total: 4, processed: 2, succeeded: 2, failed: 0 },
    });
  }

  it("is the row as stored: a run with a key, a retry of another, a heartbeat and progress, and a Cancelling one", async () => {
    const ws = await makeWorkspace("statement-answer");
    const recorder = statementRecorder();
    const svc = new RunService(recorder.db, { policyFor, settings: DEFAULT_SETTINGS });
    const original = await createQueued(ws);
    const keyed = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 2 }, idempotencyKey: "k-answer", initiator: "user:answer", retryOf: original.id });
    if (!keyed.ok) throw new Error("not created");
    await svc.claim(keyed.run.id, 1, 1);
    await svc.heartbeat({ runId: keyed.run.id, type: "demo.work", attempt: 1, force: true, at: Date.now() + 5, progress: { total: 4, processed: 1, succeeded: 1, failed: 0 } });
    const cancelling = await createRunning(ws);
    const cancel = await svc.cancel(cancelling.id, { actor: "user:answer", reason: "not needed" });
    expect(cancel).toMatchObject({ ok: true, run: { status: "running", cancelRequestedBy: "user:answer" } });

    for (const id of [original.id, keyed.run.id, cancelling.id]) {
      const snapshot = (await svc.getById(id))!;
      const before = recorder.calls.length;
      const answer = await reconcileAsSweep(svc, snapshot);
      expect(answer.ok, id).toBe(true);
      // One round trip, and no row came back from it: the answer was built.
      expect(recorder.calls.length - before).toBe(1);
      const update = recorder.calls.at(-1)![0]!;
      expect(answer.run).toEqual(await svc.getById(id));
      // Only the seek by id: no CHECK reads a temporary b-tree, and nothing is returned.
      expect(update.rowsRead).toBe(1);
    }
    expect((await svc.getById(cancelling.id))?.outcome).toBe("cancelled");
  });

  it("a snapshot the row has moved past loses the compare-and-set and is decided again on the stored row", async () => {
    const ws = await makeWorkspace("statement-stale");
    const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS });
    const run = await createRunning(ws);
    // A heartbeat lands after the sweep's read: the deadline it read is stale, so the sweep is fenced.
    await svc.heartbeat({ runId: run.id, type: "demo.work", attempt: 1, force: true, at: Date.now() + 5 });
    const answer = await reconcileAsSweep(svc, run);
    expect(answer).toMatchObject({ ok: false, refusal: "fenced" });
    expect(await svc.getById(run.id)).toMatchObject({ status: "running", outcome: "pending" });
  });

  it("with endpoints, the outbox's endpoints read names each delivery and the first tries are announced", async () => {
    const ws = await makeWorkspace("statement-endpoints");
    const endpoints = [await seedEndpoint(ws), await seedEndpoint(ws)];
    const recorder = statementRecorder();
    const q = delayRecorder();
    const svc = new RunService(recorder.db, { policyFor, settings: DEFAULT_SETTINGS, webhooks: q.queue });
    const run = await createRunning(ws);
    const answer = await reconcileAsSweep(svc, (await svc.getById(run.id))!);
    expect(answer.ok).toBe(true);

    const deliveries = await deliveriesOf(run.id);
    expect(deliveries.map((d) => d.endpoint_id).sort()).toEqual(endpoints.map((e) => e.id).sort());
    expect(q.sent.map((s) => s.body)).toEqual(
      expect.arrayContaining(endpoints.map((e) => ({ v: 1, messageId: deliveries[0]!.message_id, endpointId: e.id, tries: 0 }))),
    );
    expect(q.sent).toHaveLength(endpoints.length);
    const batch = recorder.calls.at(-1)!;
    expect(label(batch.at(-1)!.sql)).toBe("SELECT endpoint_id FROM webhook_deliveries");
    // A row read per delivery, by the primary key's message_id prefix.
    expect(batch.at(-1)!.rowsRead).toBe(endpoints.length);
  });
});
