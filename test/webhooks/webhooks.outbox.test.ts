/**
 * The webhook outbox rides in the terminal transition's own D1 batch: one
 * delivery row per endpoint of the run's workspace exactly when the run
 * becomes completed (by the consumer, a reconciliation or the dead-letter
 * bridge), none for a transition that is not terminal or that lost its race,
 * none for a workspace without endpoints; and the first try of each is
 * announced on the webhooks queue, or left to the cron when that send fails.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";
import { meteredDb } from "../../src/runs/metered-db";
import { outboxInsertFor } from "../../src/webhooks/outbox";
import { redriveWebhooks, REDRIVE_GRACE_MS } from "../../src/webhooks/redrive";
import { makeWorkspace } from "../support/fixtures";
import { newRun, parsed, storedRow } from "../support/runs";
import { deliveriesOf, delayRecorder, seedEndpoint } from "../support/webhooks";

function serviceWith(queue: Queue) {
  return new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, webhooks: queue });
}

async function setup(label: string, endpoints = 1) {
  const ws = await makeWorkspace(label);
  const eps = [];
  for (let i = 0; i < endpoints; i++) eps.push(await seedEndpoint(ws));
  const q = delayRecorder();
  const svc = serviceWith(q.queue);
  return { ws, eps, q, svc };
}

describe("outbox rows are written with the terminal transition", () => {
  it("a success writes one pending delivery per endpoint, the same webhook-id for all, and announces each first try", async () => {
    const { ws, eps, q, svc } = await setup("outbox-success", 2);
    // Another workspace's endpoint never hears of this run.
    await seedEndpoint(await makeWorkspace("outbox-other"));
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    expect(await deliveriesOf(run.id)).toHaveLength(0);
    const answer = await svc.complete(run.id, 1, { outcome: "succeeded" });
    expect(answer.ok).toBe(true);

    const rows = await deliveriesOf(run.id);
    expect(rows.map((r) => r.endpoint_id).sort()).toEqual(eps.map((e) => e.id).sort());
    expect(new Set(rows.map((r) => r.message_id)).size).toBe(1);
    const stored = await storedRow(run.id);
    for (const r of rows) {
      expect(r).toMatchObject({ workspace_id: ws, event_type: "run.completed", status: "pending", attempts: 0, next_attempt_at: stored.completed_at });
      expect(parsed(r.payload)).toEqual({
        type: "run.completed",
        timestamp: new Date(stored.completed_at!).toISOString(),
        data: {
          runId: run.id,
          workspaceId: ws,
          type: run.type,
          status: "completed",
          outcome: "succeeded",
          reasonCode: null,
          reconciledBy: null,
          attempt: 1,
          maxAttempts: run.maxAttempts,
          failureMessage: null,
          createdAt: new Date(run.createdAt).toISOString(),
          completedAt: new Date(stored.completed_at!).toISOString(),
        },
      });
    }
    expect(q.sent.map((s) => s.body)).toEqual(
      expect.arrayContaining(eps.map((e) => ({ v: 1, messageId: rows[0]!.message_id, endpointId: e.id, tries: 0 }))),
    );
    expect(q.sent).toHaveLength(2);
  });

  it("a workspace without endpoints gets no delivery and no send", async () => {
    const { ws, q, svc } = await setup("outbox-none", 0);
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    await svc.complete(run.id, 1, { outcome: "partially_succeeded", message: "3 of 4" });
    expect(await deliveriesOf(run.id)).toHaveLength(0);
    expect(q.sent).toHaveLength(0);
  });

  it("a transition that is not terminal writes nothing; the failure that ends the run writes its one event", async () => {
    const { ws, svc } = await setup("outbox-retry");
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("boom") });
    expect((await storedRow(run.id)).status).toBe("queued");
    expect(await deliveriesOf(run.id)).toHaveLength(0);
    await svc.claim(run.id, 2);
    await svc.failAttempt(run.id, 2, { reason: "handler.error", retryable: false, error: new Error("boom") });
    const [row] = await deliveriesOf(run.id);
    expect(parsed<{ data: Record<string, unknown> }>(row!.payload).data).toMatchObject({ outcome: "failed", reasonCode: "handler.error", attempt: 2 });
  });

  it("reconciliations are events too: the sweep's and the dead-letter bridge's, with reconciledBy", async () => {
    const { ws, svc } = await setup("outbox-reconciled");
    const swept = await newRun(svc, ws);
    await svc.claim(swept.id, 1);
    await svc.reconcile(swept.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} });
    const dead = await newRun(svc, ws);
    await svc.deadLetter(dead.id, {});
    const data = async (id: string) => parsed<{ data: Record<string, unknown> }>((await deliveriesOf(id))[0]!.payload).data;
    expect(await data(swept.id)).toMatchObject({ outcome: "failed", reasonCode: "lifecycle.stale_running", reconciledBy: "sweep" });
    expect(await data(dead.id)).toMatchObject({ outcome: "failed", reconciledBy: "dead_letter" });
  });

  it("an endpoint filtered to other event types gets nothing; one filtered to run.completed gets it", async () => {
    const ws = await makeWorkspace("outbox-filter");
    const wants = await seedEndpoint(ws, { eventTypes: ["run.completed"] });
    await seedEndpoint(ws, { eventTypes: ["run.started"] });
    const svc = serviceWith(delayRecorder().queue);
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    expect((await deliveriesOf(run.id)).map((r) => r.endpoint_id)).toEqual([wants.id]);
  });

  it("under a race between a result and a reconciliation, the run ends once and each endpoint gets exactly one event, of the winner", async () => {
    for (let i = 0; i < 5; i++) {
      const { ws, eps, svc } = await setup(`outbox-race-${i}`, 2);
      const run = await newRun(svc, ws);
      await svc.claim(run.id, 1);
      await Promise.all([
        svc.complete(run.id, 1, { outcome: "succeeded" }),
        svc.reconcile(run.id, { detector: "tracker_alarm", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} }),
        svc.complete(run.id, 1, { outcome: "succeeded" }),
      ]);
      const final = await storedRow(run.id);
      const rows = await deliveriesOf(run.id);
      expect(rows).toHaveLength(eps.length);
      for (const r of rows) expect(parsed<{ data: { outcome: string } }>(r.payload).data.outcome).toBe(final.outcome);
    }
  });

  it("a first send that fails leaves the transition done and the delivery pending; the cron re-drives it once overdue", async () => {
    const ws = await makeWorkspace("outbox-lost-send");
    const ep = await seedEndpoint(ws);
    const svc = serviceWith(delayRecorder({ fail: true }).queue);
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    const answer = await svc.complete(run.id, 1, { outcome: "succeeded" });
    expect(answer.ok).toBe(true);
    const [row] = await deliveriesOf(run.id);
    expect(row).toMatchObject({ status: "pending", attempts: 0 });

    const cron = delayRecorder();
    const cronEnv = { ...env, WEBHOOKS_QUEUE: cron.queue };
    // Not yet overdue: its own message may still be on the way.
    await redriveWebhooks(cronEnv, { now: row!.next_attempt_at! + REDRIVE_GRACE_MS - 1, retentionMs: 86_400_000 });
    expect(cron.sent.filter((s) => (s.body as { messageId: string }).messageId === row!.message_id)).toHaveLength(0);
    await redriveWebhooks(cronEnv, { now: row!.next_attempt_at! + REDRIVE_GRACE_MS, retentionMs: 86_400_000 });
    expect(cron.sent.map((s) => s.body)).toContainEqual({ v: 1, messageId: row!.message_id, endpointId: ep.id, tries: 0 });
  });
});

describe("what the outbox costs a terminal transition", () => {
  /** D1's rows read/written for `complete()` of a fresh running run in `ws`. */
  async function completionCost(ws: string): Promise<{ rowsRead: number; rowsWritten: number }> {
    const metered = meteredDb(env.DB);
    const svc = new RunService(metered.db, { policyFor, settings: DEFAULT_SETTINGS, webhooks: delayRecorder().queue });
    const run = await newRun(svc, ws);
    await svc.claim(run.id, 1);
    const before = { ...metered.cost };
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    return { rowsRead: metered.cost.rowsRead - before.rowsRead, rowsWritten: metered.cost.rowsWritten - before.rowsWritten };
  }

  /** The outbox insert's own D1 meta, run after a statement that changed one row (as a won transition's audit insert). */
  async function outboxMeta(ws: string) {
    const { statement } = outboxInsertFor(
      { id: `run_${"0".repeat(26)}`, workspaceId: ws, type: "demo.work", createdAt: 1 },
      { status: "completed", outcome: "succeeded", attempt: 1, maxAttempts: 3, reasonCode: null, reconciledBy: null },
      { completedAt: 2, failureMessage: null },
    );
    const [, result] = await env.DB.batch([
      env.DB.prepare("UPDATE workspaces SET name = name WHERE id = ?").bind(ws),
      env.DB.prepare(statement.sql).bind(...statement.params),
    ]);
    return result!.meta;
  }

  it("a workspace without endpoints: the outbox insert writes no row; with one, one row and its index entries", async () => {
    const none = await outboxMeta(await makeWorkspace("cost-none"));
    expect(none.rows_written).toBe(0);
    expect(none.changes).toBe(0);
    const wsOne = await makeWorkspace("cost-one");
    await seedEndpoint(wsOne);
    const one = await outboxMeta(wsOne);
    expect(one.changes).toBe(1);
    expect(one.rows_written).toBeGreaterThan(0);
    // The whole completion, for the record (D1 counts index entries as rows written).
    const completion = { none: await completionCost(await makeWorkspace("cost-run-none")), one: await completionCost(wsOne) };
    console.log(JSON.stringify({ event: "webhooks.outbox_cost", outbox: { none: [none.rows_read, none.rows_written], one: [one.rows_read, one.rows_written] }, completion }));
  });
});
