/**
 * Retention: terminal runs older than the cutoff go, with their events, in
 * bounded batches; live runs never go, however old; recent terminal runs
 * stay. The cron entry refuses to act — sweep or purge — on an invalid
 * RETENTION_DAYS or a violated timing contract, naming what is wrong.
 */
import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config";
import { HOUR_MS, hourStart, insertAuditEvent, minIdAt, SYSTEM_WORKSPACE_ID } from "../../src/runs";
import { purgeExpired } from "../../src/sweep/retention";
import { handleScheduled } from "../../src/sweep/scheduled";
import { makeWorkspace, manualClock } from "../support/fixtures";
import { eventsAbout } from "../support/runs";
import {
  actionsOf,
  createQueued,
  createRunning,
  DEMO_POLICY as P,
  envWithVars,
  eventsOf,
  makeOverdue,
  service,
  storedRow,
} from "../support/sweep";

const DAY_MS = 86_400_000;
const RETENTION_MS = 30 * DAY_MS;

/** A run created, claimed and completed at `at` (its events are that old too). */
async function terminalAt(ws: string, at: number): Promise<string> {
  const clock = manualClock(at);
  const run = await createQueued(ws, { clock: clock.now });
  const svc = service(clock.now);
  await svc.claim(run.id, 1);
  const done = await svc.complete(run.id, 1, { outcome: "succeeded" });
  if (!done.ok || done.run.completedAt !== at) throw new Error("not completed at the given time");
  return run.id;
}

async function exists(runId: string): Promise<boolean> {
  const row = await env.DB.prepare("SELECT 1 AS one FROM operation_runs WHERE id = ?").bind(runId).first();
  return row !== null;
}

/** Purge everything already past the cutoff, so a test's counts are its own. */
async function purgeAll(now: number): Promise<void> {
  await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, maxBatches: 10_000 });
}

describe("purgeExpired", () => {
  it("deletes expired terminal runs and their events oldest first, at most maxBatches × batchSize per call; the next call continues", async () => {
    const now = Date.now();
    await purgeAll(now);
    const ws = await makeWorkspace("retention");
    const old: string[] = [];
    for (let i = 0; i < 10; i++) old.push(await terminalAt(ws, now - 40 * DAY_MS + i * 60_000)); // old[0] is the oldest
    const recent = [await terminalAt(ws, now - DAY_MS), await terminalAt(ws, now - RETENTION_MS + 60_000)];
    for (const id of [...old, ...recent]) expect(await actionsOf(id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);

    const first = await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, batchSize: 3, maxBatches: 2 });
    expect(first).toMatchObject({ runsDeleted: 6, eventsDeleted: 18 });
    for (const [i, id] of old.entries()) {
      expect(await exists(id), `old[${i}]`).toBe(i >= 6);
      expect(await eventsOf(id), `events of old[${i}]`).toHaveLength(i >= 6 ? 3 : 0);
    }

    const second = await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, batchSize: 3, maxBatches: 2 });
    expect(second).toMatchObject({ runsDeleted: 4, eventsDeleted: 12 });
    for (const id of old) expect(await exists(id)).toBe(false);

    const third = await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, batchSize: 3, maxBatches: 2 });
    expect(third).toMatchObject({ runsDeleted: 0, eventsDeleted: 0, d1: { rowsWritten: 0 } });
    for (const id of recent) {
      expect(await exists(id)).toBe(true);
      expect(await eventsOf(id)).toHaveLength(3);
    }
   }, 20_000);

  it("never binds more ids than D1 allows: a batch is at most 90 runs whatever batchSize asks", async () => {
    const now = Date.now();
    await purgeAll(now);
    const ws = await makeWorkspace("retention-cap");
    const at = now - 45 * DAY_MS;
    const res = await env.DB.prepare(
      `WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100)
       INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress, created_at,
         started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message, diagnostics, reconciled_by,
         idempotency_key, initiator, updated_at)
       SELECT ?3 || printf('%016d', x), ?1, 'demo.work', 'completed', 'succeeded', 1, 3, '{}', '{}', ?2, ?2, ?2 + x, NULL, NULL,
         NULL, NULL, '{"attempts":[]}', NULL, NULL, 'user:seed', ?2 FROM n`,
    )
      // Ids carry their creation time (retention reads it from the primary key).
      .bind(ws, at, minIdAt("run", at).slice(0, "run_".length + 10))
      .run();
    expect(res.meta.changes).toBe(100);

    expect(await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, batchSize: 500, maxBatches: 1 })).toMatchObject({ runsDeleted: 90 });
    expect(await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, batchSize: 500, maxBatches: 1 })).toMatchObject({ runsDeleted: 10 });
  });

  it("never touches live runs, however old, nor their events", async () => {
    const now = Date.now();
    await purgeAll(now);
    const ws = await makeWorkspace("retention-live");
    const longAgo = manualClock(now - 90 * DAY_MS);
    const queued = await createQueued(ws, { clock: longAgo.now });
    const running = await createRunning(ws, { clock: longAgo.now });
    const control = await terminalAt(ws, now - 90 * DAY_MS);
    const before = { queued: await storedRow(queued.id), running: await storedRow(running.id) };

    const report = await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS, maxBatches: 100 });
    expect(report.runsDeleted).toBe(1);
    expect(await exists(control)).toBe(false);
    expect(await storedRow(queued.id)).toEqual(before.queued);
    expect(await storedRow(running.id)).toEqual(before.running);
    expect(await actionsOf(queued.id)).toEqual(["run.queued"]);
    expect(await actionsOf(running.id)).toEqual(["run.queued", "run.attempt_started"]);
  });

  it("ages out events about no run (e.g. malformed messages) past the cutoff, and keeps recent ones", async () => {
    const now = Date.now();
    await purgeAll(now);
    const event = (subjectId: string, createdAt: number) =>
      insertAuditEvent(env.DB, {
        workspaceId: SYSTEM_WORKSPACE_ID,
        actor: "system:consumer",
        action: "queue.message_malformed",
        subjectType: "queue_message",
        subjectId,
        metadata: { queue: "operations" },
        createdAt,
      }).run();
    const oldId = `msg_old_${crypto.randomUUID()}`;
    const newId = `msg_new_${crypto.randomUUID()}`;
    await event(oldId, now - 31 * DAY_MS);
    await event(newId, now - DAY_MS);

    const report = await purgeExpired(env.DB, { now, retentionMs: RETENTION_MS });
    expect(report).toMatchObject({ runsDeleted: 0, eventsDeleted: 1 });
    expect(await eventsAbout(oldId)).toEqual([]);
    expect(await eventsAbout(newId)).toHaveLength(1);
  });
});

describe("failure counters (the admin's 24 h tiles)", () => {
  /** This workspace's counter hours (epoch ms), oldest first. */
  async function counterHours(ws: string): Promise<number[]> {
    const { results } = await env.DB.prepare("SELECT hour_start FROM run_failure_counts WHERE workspace_id = ? ORDER BY hour_start")
      .bind(ws)
      .all<{ hour_start: number }>();
    return results.map((r) => r.hour_start);
  }
  const seed = (ws: string, hour: number) =>
    env.DB.prepare("INSERT INTO run_failure_counts (workspace_id, hour_start, failed, reconciled) VALUES (?, ?, 1, 0)").bind(ws, hour).run();

  it("keeps 48 h of them whatever RETENTION_DAYS, purged by the cron invocation scheduled in an hour's first minute only", async () => {
    const now = Date.now();
    const top = hourStart(now);
    const ws = await makeWorkspace("retention-counters");
    // A real failure, three days ago: the failing transition writes its hour's counter.
    const clock = manualClock(now - 3 * DAY_MS);
    const run = await createQueued(ws, { clock: clock.now });
    const svc = service(clock.now);
    await svc.claim(run.id, 1);
    expect(await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: false, error: "boom" })).toMatchObject({ ok: true });
    const failedHour = hourStart(now - 3 * DAY_MS);
    for (const hour of [top - 49 * HOUR_MS, top - 47 * HOUR_MS, top]) await seed(ws, hour);
    expect(await counterHours(ws)).toEqual([failedHour, top - 49 * HOUR_MS, top - 47 * HOUR_MS, top]);

    // Any other minute of the hour (the cron runs every minute): the table is not scanned.
    const mid = await purgeExpired(env.DB, { now: top + 30 * 60_000, retentionMs: RETENTION_MS, scheduledTime: top + 30 * 60_000 });
    expect(mid.countersDeleted).toBe(0);
    expect(await counterHours(ws)).toHaveLength(4);

    const first = await purgeExpired(env.DB, { now: top + 20_000, retentionMs: RETENTION_MS, scheduledTime: top + 59_999 });
    expect(first.countersDeleted).toBeGreaterThanOrEqual(2);
    expect(await counterHours(ws)).toEqual([top - 47 * HOUR_MS, top]);
  });

  it("the cron passes its scheduled time: the first minute's invocation purges, another minute's does not, whatever the clock", async () => {
    const top = hourStart(Date.now());
    const ws = await makeWorkspace("retention-counters-cron");
    const old = top - 72 * HOUR_MS;
    await seed(ws, old);
    await handleScheduled(createScheduledController({ scheduledTime: top - 30 * 60_000, cron: "* * * * *" }), env);
    expect(await counterHours(ws)).toEqual([old]);
    await handleScheduled(createScheduledController({ scheduledTime: top, cron: "* * * * *" }), env);
    expect(await counterHours(ws)).toEqual([]);
  });
});

describe("handleScheduled refuses to act on bad settings", () => {
  const controller = () => createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" });

  it.each(["0", "abc"])("RETENTION_DAYS = %j → ConfigError naming RETENTION_DAYS; nothing swept, nothing purged", async (value) => {
    const now = Date.now();
    const ws = await makeWorkspace("retention-config");
    const overdue = await createRunning(ws);
    await makeOverdue(overdue.id, 5_000);
    const expired = await terminalAt(ws, now - 40 * DAY_MS);

    const refused = handleScheduled(controller(), envWithVars({ RETENTION_DAYS: value }));
    await expect(refused).rejects.toThrow(ConfigError);
    await expect(refused).rejects.toThrow(/RETENTION_DAYS/);
    expect(await storedRow(overdue.id)).toMatchObject({ status: "running" });
    expect(await actionsOf(overdue.id)).toEqual(["run.queued", "run.attempt_started"]);
    expect(await exists(expired)).toBe(true);

    // With the configured value the same cron sweeps and purges them.
    await handleScheduled(controller(), env);
    expect(await storedRow(overdue.id)).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_running", reconciled_by: "sweep" });
    expect(await exists(expired)).toBe(false);
  });
});
