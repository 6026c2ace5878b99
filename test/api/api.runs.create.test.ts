/**
 * POST /api/v1/runs on the Workers runtime with real D1: the 202 answer and
 * its run JSON (contract section 1, display state of section 6), the stored
 * row and its single `run.queued` event, and Idempotency-Key semantics.
 *
 * Tests that go through the real queue assert only what cannot change once
 * the consumer picks the run up (the answer, immutable columns, the
 * `run.queued` event); tests that need the run to stay queued use a
 * recording queue instead.
 */
import { trackerState } from "../support/execution";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { policyFor } from "../../src/operations";
import {
  DEMO_BODY,
  apiClient,
  bodyOf,
  call,
  callWith,
  expectProblem,
  postInit,
  recordingQueue,
  runEnvelope,
  runsInWorkspace,
} from "../support/api";
import { eventsOf, eventsOfWorkspace, storedRow } from "../support/runs";

const DEMO_POLICY = policyFor("demo.work");

async function runsWithKey(workspaceId: string, key: string): Promise<string[]> {
  const res = await env.DB.prepare("SELECT id FROM operation_runs WHERE workspace_id = ? AND idempotency_key = ?")
    .bind(workspaceId, key)
    .all<{ id: string }>();
  return res.results.map((r) => r.id);
}

async function queuedEventsOf(workspaceId: string) {
  return (await eventsOfWorkspace(workspaceId)).filter((e) => e.action === "run.queued");
}

describe("POST /api/v1/runs accepts a run", () => {
  it("answers 202 with Location and the run as the contract shows it", async () => {
    const client = await apiClient("create");
    const before = Date.now();
    const res = await call("/api/v1/runs", postInit(client.token, DEMO_BODY));
    const after = Date.now();

    expect(res.status).toBe(202);
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    const { run } = await bodyOf(res, runEnvelope);
    expect(res.headers.get("location")).toBe(`/api/v1/runs/${run.id}`);
    expect(run).toEqual({
      id: run.id,
      workspaceId: client.workspaceId,
      type: "demo.work",
      status: "queued",
      outcome: "pending",
      displayState: "queued",
      displayLabel: "Queued",
      attempt: 0,
      maxAttempts: DEMO_POLICY.maxAttempts,
      createdAt: run.createdAt,
      startedAt: null,
      completedAt: null,
      lastHeartbeatAt: null,
      progress: { total: 0, processed: 0, succeeded: 0, failed: 0 },
      reasonCode: null,
      reasonFamily: null,
      reconciledBy: null,
      failureMessage: null,
      retry: null,
      cancelRequestedAt: null,
      cancelRequestedBy: null,
    });
    expect(DEMO_POLICY.maxAttempts).toBe(3);
    const createdAt = Date.parse(run.createdAt);
    expect(createdAt).toBeGreaterThanOrEqual(before);
    expect(createdAt).toBeLessThanOrEqual(after);
    expect(new Date(createdAt).toISOString()).toBe(run.createdAt);

    // Columns no later transition touches: safe to read while the consumer may be running it.
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      workspace_id: client.workspaceId,
      type: "demo.work",
      max_attempts: 3,
      created_at: createdAt,
      idempotency_key: null,
      // The token by its name (test/support/api.ts names every token "test token"), as people read it.
      initiator: "api-token:test token",
    });
    expect(JSON.parse(row.input)).toEqual(DEMO_BODY.input);

    const queued = (await eventsOf(run.id)).filter((e) => e.action === "run.queued");
    expect(queued).toHaveLength(1);
    expect(queued[0]).toMatchObject({
      workspaceId: client.workspaceId,
      actor: "api-token:test token",
      createdAt,
      // The actor reads as the token's name; its id stays in the metadata.
      metadata: { type: "demo.work", maxAttempts: 3, idempotencyKey: null, actorId: client.tokenId },
    });
  });

  it("Location names a run the same token can read back", async () => {
    const client = await apiClient("location");
    const created = await call("/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(created.status).toBe(202);
    const location = created.headers.get("location");
    const { run } = await bodyOf(created, runEnvelope);
    expect(location).not.toBeNull();

    const read = await call(location ?? "", { token: client.token });
    expect(read.status).toBe(200);
    const { run: again } = await bodyOf(read, runEnvelope);
    expect({ id: again.id, workspaceId: again.workspaceId, type: again.type, createdAt: again.createdAt }).toEqual({
      id: run.id,
      workspaceId: client.workspaceId,
      type: "demo.work",
      createdAt: run.createdAt,
    });
  });

  it("stores the run queued with its stale-queued deadline; its tracker holds dispatch 1 and sent it once", async () => {
    const client = await apiClient("message");
    const q = recordingQueue();
    const res = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);

    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "queued",
      outcome: "pending",
      attempt: 0,
      started_at: null,
      completed_at: null,
      last_heartbeat_at: null,
      reason_code: null,
      reconciled_by: null,
      deadline_at: Date.parse(run.createdAt) + DEMO_POLICY.staleQueuedAfterMs,
    });
    // The tracker, the run's outbox, sent dispatch 1 (a pointer to the run, never its input).
    expect(q.sent).toEqual([]);
    expect(await trackerState(run.id)).toMatchObject({
      runId: run.id,
      workspaceId: client.workspaceId,
      status: "queued",
      dispatch: { n: 1, sends: 1, claimed: false, dueAt: Date.parse(run.createdAt) },
    });
  });
});

describe("Idempotency-Key", () => {
  it("a repeated request returns the first run with 200, one row, one run.queued and one message", async () => {
    const client = await apiClient("idem");
    const q = recordingQueue();
    const init = postInit(client.token, DEMO_BODY, { "idempotency-key": "order-42" });

    const first = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", init);
    const second = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": "order-42" }));

    expect([first.status, second.status]).toEqual([202, 200]);
    const a = (await bodyOf(first, runEnvelope)).run;
    const b = (await bodyOf(second, runEnvelope)).run;
    expect(b.id).toBe(a.id);
    expect(b.createdAt).toBe(a.createdAt);
    expect(second.headers.get("location")).toBe(`/api/v1/runs/${a.id}`);
    expect(first.headers.get("location")).toBe(second.headers.get("location"));

    expect(await runsWithKey(client.workspaceId, "order-42")).toEqual([a.id]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
    expect((await queuedEventsOf(client.workspaceId)).map((e) => e.subjectId)).toEqual([a.id]);
    // The replay handed the run to its tracker again: a no-op, nothing re-sent.
    expect(await trackerState(a.id)).toMatchObject({ dispatch: { n: 1, sends: 1 } });
  });

  it("the same input with its keys in another order is the same request", async () => {
    const client = await apiClient("idem-order");
    const q = recordingQueue();
    const first = await callWith(
      { OPERATIONS_QUEUE: q.queue },
      "/api/v1/runs",
      postInit(client.token, '{"type":"demo.work","input":{"steps":2,"stepMs":0}}', { "idempotency-key": "k-order" }),
    );
    const second = await callWith(
      { OPERATIONS_QUEUE: q.queue },
      "/api/v1/runs",
      postInit(client.token, '{"input":{"stepMs":0,"steps":2},"type":"demo.work"}', { "idempotency-key": "k-order" }),
    );
    expect([first.status, second.status]).toEqual([202, 200]);
    expect((await bodyOf(second, runEnvelope)).run.id).toBe((await bodyOf(first, runEnvelope)).run.id);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
  });

  it("five concurrent requests with one key create exactly one run", async () => {
    const client = await apiClient("idem-race");
    const key = `race-${crypto.randomUUID()}`;
    const responses = await Promise.all(
      Array.from({ length: 5 }, () => call("/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": key }))),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 200, 200, 200, 202]);
    const runs = await Promise.all(responses.map(async (r) => (await bodyOf(r, runEnvelope)).run));
    const ids = new Set(runs.map((r) => r.id));
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect(new Set(responses.map((r) => r.headers.get("location")))).toEqual(new Set([`/api/v1/runs/${id}`]));

    expect(await runsWithKey(client.workspaceId, key)).toEqual([id]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
    expect((await queuedEventsOf(client.workspaceId)).map((e) => e.subjectId)).toEqual([id]);
  });

  it("the same key with a different input is a 409 problem naming the first run, and writes nothing", async () => {
    const client = await apiClient("idem-conflict");
    const q = recordingQueue();
    const first = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": "k1" }));
    expect(first.status).toBe(202);
    const { run } = await bodyOf(first, runEnvelope);

    const other = { type: DEMO_BODY.type, input: { ...DEMO_BODY.input, steps: DEMO_BODY.input.steps + 1 } };
    const res = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, other, { "idempotency-key": "k1" }));
    const problem = await expectProblem(res, 409);
    expect(problem.type).toBe("https://oplife.dev/problems/idempotency-key-reused");
    expect(problem["runId"]).toBe(run.id);
    expect(res.headers.get("location")).toBeNull();

    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
    expect(await queuedEventsOf(client.workspaceId)).toHaveLength(1);
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 1, sends: 1 } });
    expect(JSON.parse((await storedRow(run.id)).input)).toEqual(DEMO_BODY.input);
  });

  it("a key is scoped to its workspace: another workspace's same key creates its own run", async () => {
    const a = await apiClient("idem-ws-a");
    const b = await apiClient("idem-ws-b");
    const q = recordingQueue();
    const ra = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(a.token, DEMO_BODY, { "idempotency-key": "shared" }));
    const rb = await callWith(
      { OPERATIONS_QUEUE: q.queue },
      "/api/v1/runs",
      postInit(b.token, { type: "demo.work", input: { steps: 5, stepMs: 0 } }, { "idempotency-key": "shared" }),
    );
    expect([ra.status, rb.status]).toEqual([202, 202]);
    const runA = (await bodyOf(ra, runEnvelope)).run;
    const runB = (await bodyOf(rb, runEnvelope)).run;
    expect(runB.id).not.toBe(runA.id);
    expect(runB.workspaceId).toBe(b.workspaceId);
  });

  it.each([
    ["contains a space", "two words"],
    ["is longer than 255 characters", "k".repeat(256)],
    ["contains a tab", "a\tb"],
    ["contains a DEL control character", "key\x7f"],
  ])("a key that %s is a 400 problem and creates nothing", async (_why, key) => {
    const client = await apiClient("idem-bad");
    const res = await call("/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": key }));
    const problem = await expectProblem(res, 400);
    expect(problem.errors?.map((e) => e.path)).toEqual(["Idempotency-Key"]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("a key of exactly 255 visible characters is accepted and stored", async () => {
    const client = await apiClient("idem-255");
    const key = `${"~!".repeat(127)}Z`;
    expect(key).toHaveLength(255);
    const q = recordingQueue();
    const res = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": key }));
    expect(res.status).toBe(202);
    const { run } = await bodyOf(res, runEnvelope);
    expect(await runsWithKey(client.workspaceId, key)).toEqual([run.id]);
  });
});
