/**
 * Idempotent create on real D1: the `(workspace_id, idempotency_key)` unique
 * index decides, and the `run.queued` event rides in the same batch guarded by
 * `changes() = 1`, so a repeated request never writes a second run or event.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { makeWorkspace, runService } from "../support/fixtures";
import { writeBarrier } from "../support/d1";
import { DEMO, DEMO_INPUT } from "../support/demo";
import { countRuns, eventsOfWorkspace, serviceOn } from "../support/runs";

const request = (workspaceId: string, idempotencyKey: string | null, input: unknown = DEMO_INPUT) =>
  ({ workspaceId, type: DEMO, input, idempotencyKey, initiator: "api-token:tok_1" }) as const;

it("the same key twice, one after the other: same run, created false the second time, one run and one run.queued", async () => {
  const ws = await makeWorkspace("idem");
  const svc = runService();
  const first = await svc.create(request(ws, "order-42"));
  const second = await svc.create(request(ws, "order-42"));
  expect(first).toMatchObject({ ok: true, created: true });
  expect(second).toMatchObject({ ok: true, created: false });
  expect(second.ok && first.ok && second.run.id).toBe(first.ok && first.run.id);
  expect(await countRuns(ws)).toBe(1);
  expect((await eventsOfWorkspace(ws)).map((e) => e.action)).toEqual(["run.queued"]);
});

it("the same key five times at once (all inserts in flight together): one run created, all answers name it, one run.queued", async () => {
  const ws = await makeWorkspace("idem");
  const race = writeBarrier(5);
  const svc = serviceOn(race.db);
  const answers = await Promise.all(Array.from({ length: 5 }, () => svc.create(request(ws, "order-43"))));
  // Every insert reached D1 together; the unique index let exactly one through.
  expect(race.casChanges.toSorted()).toEqual([0, 0, 0, 0, 1]);
  expect(answers.every((a) => a.ok)).toBe(true);
  expect(answers.filter((a) => a.ok && a.created)).toHaveLength(1);
  const ids = new Set(answers.map((a) => (a.ok ? a.run.id : null)));
  expect(ids.size).toBe(1);
  expect(await countRuns(ws)).toBe(1);
  const events = await eventsOfWorkspace(ws);
  expect(events.map((e) => [e.action, e.subjectId])).toEqual([["run.queued", [...ids][0]]]);
});

it("the same key with the same input in another key order is the same request", async () => {
  const ws = await makeWorkspace("idem");
  const svc = runService();
  const first = await svc.create(request(ws, "order-44", { steps: 2, stepMs: 10 }));
  const second = await svc.create(request(ws, "order-44", { stepMs: 10, steps: 2 }));
  expect(second).toMatchObject({ ok: true, created: false, run: { id: first.ok ? first.run.id : "?" } });
});

it("the same key with a different input is a conflict naming the first run, and writes nothing", async () => {
  const ws = await makeWorkspace("idem");
  const svc = runService();
  const first = await svc.create(request(ws, "order-45", { steps: 2, stepMs: 10 }));
  const again = await svc.create(request(ws, "order-45", { steps: 3, stepMs: 10 }));
  expect(again.ok).toBe(false);
  expect(!again.ok && again.conflict.id).toBe(first.ok && first.run.id);
  expect(!again.ok && again.conflict.input).toEqual({ steps: 2, stepMs: 10 });
  expect(await countRuns(ws)).toBe(1);
  expect(await eventsOfWorkspace(ws)).toHaveLength(1);
});

it("the same key with a different type is a conflict", async () => {
  const ws = await makeWorkspace("idem");
  const svc = runService();
  await svc.create(request(ws, "order-46"));
  const again = await svc.create({ ...request(ws, "order-46"), type: "inventory.sync" });
  expect(again.ok).toBe(false);
  expect(await countRuns(ws)).toBe(1);
});

it("the same key in two workspaces makes two runs", async () => {
  const a = await makeWorkspace("idem-a");
  const b = await makeWorkspace("idem-b");
  const svc = runService();
  const ra = await svc.create(request(a, "shared-key"));
  const rb = await svc.create(request(b, "shared-key"));
  expect(ra).toMatchObject({ ok: true, created: true, run: { workspaceId: a } });
  expect(rb).toMatchObject({ ok: true, created: true, run: { workspaceId: b } });
  expect(ra.ok && rb.ok && ra.run.id !== rb.run.id).toBe(true);
  expect(await eventsOfWorkspace(a)).toHaveLength(1);
  expect(await eventsOfWorkspace(b)).toHaveLength(1);
});

it("no key: the same request twice makes two runs with a run.queued each", async () => {
  const ws = await makeWorkspace("idem");
  const svc = runService();
  const answers = await Promise.all([svc.create(request(ws, null)), svc.create(request(ws, null))]);
  expect(answers.map((a) => a.ok && a.created)).toEqual([true, true]);
  expect(await countRuns(ws)).toBe(2);
  const events = await eventsOfWorkspace(ws);
  expect(events.map((e) => e.action)).toEqual(["run.queued", "run.queued"]);
  expect(new Set(events.map((e) => e.subjectId)).size).toBe(2);
  const stored = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND idempotency_key IS NULL")
    .bind(ws)
    .first<{ n: number }>();
  expect(stored?.n).toBe(2);
});
