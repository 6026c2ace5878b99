/**
 * The cron entry as the platform calls it (the Worker's `scheduled` export):
 * it really reconciles what is overdue, and logs exactly one structured line
 * `sweep.completed` with what it examined, decided and cost.
 */
import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it } from "vitest";
import worker from "../../src/index";
import { makeWorkspace } from "../support/fixtures";
import { actionsOf, capturingLog, createQueued, createRunning, drainOverdue, envWithVars, makeOverdue, storedRow } from "../support/sweep";

beforeEach(drainOverdue);

async function cron(on: Env = env): Promise<Record<string, unknown>[]> {
  const scheduledTime = Date.now();
  const { json, raw } = await capturingLog(async () => {
    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime, cron: "* * * * *" }), on, ctx);
    await waitOnExecutionContext(ctx);
  });
  const lines = json.filter((l) => l.event === "sweep.completed");
  // One line, written as one console.log call holding one JSON string.
  expect(lines, JSON.stringify(raw)).toHaveLength(1);
  expect(lines[0]).toMatchObject({ level: "info", cron: "* * * * *", scheduledTime });
  return lines;
}

describe("worker.scheduled", () => {
  it("resolves the overdue runs (adopting a queued one no tracker holds) and logs one sweep.completed line with the figures", async () => {
    const ws = await makeWorkspace("scheduled");
    const queued = await createQueued(ws);
    const running = await createRunning(ws);
    const fresh = await createQueued(ws);
    await makeOverdue(queued.id, 2_000);
    await makeOverdue(running.id, 2_000);

    const [line] = await cron();

    // Queued, and no tracker holds it (its hand-over failed): adopted and dispatched, its deadline moved on.
    const adopted = await storedRow(queued.id);
    expect(adopted).toMatchObject({ status: "queued", reconciled_by: null });
    expect(adopted.deadline_at!).toBeGreaterThan(Date.now());
    expect(await actionsOf(queued.id)).toEqual(["run.queued"]);
    expect(await storedRow(running.id)).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_running", reconciled_by: "sweep" });
    expect(await storedRow(fresh.id)).toMatchObject({ status: "queued" });

    expect(line).toMatchObject({
      examined: 2,
      reconciled: { "lifecycle.stale_running": 1 },
      adopted: 1,
      refreshed: 0,
      lostRace: 0,
      failed: 0,
      stoppedBy: "drained",
    });
    const { rowsRead, rowsWritten, durationMs } = line as { rowsRead: unknown; rowsWritten: unknown; durationMs: unknown };
    // Figures D1 reported: two runs read, one reconciled (a row updated and an event written).
    expect(typeof rowsRead === "number" && rowsRead >= 2 && rowsRead <= 2 * 7 + 4).toBe(true);
    expect(typeof rowsWritten === "number" && rowsWritten >= 2 && rowsWritten <= 2 * 12).toBe(true);
    expect(typeof durationMs === "number" && durationMs >= 0 && durationMs < 20_000).toBe(true);
    console.log(`scheduled sweep: rows read ${String(rowsRead)}, rows written ${String(rowsWritten)}, ${String(durationMs)} ms`);
  });

  it("with nothing overdue still logs its line, with nothing reconciled and nothing written", async () => {
    const ws = await makeWorkspace("scheduled-idle");
    await createQueued(ws);
    const [line] = await cron();
    expect(line).toMatchObject({ examined: 0, reconciled: {}, refreshed: 0, rowsWritten: 0, stoppedBy: "drained" });
  });

  it("sweeps in batches of SWEEP_BATCH_SIZE from [vars]", async () => {
    const ws = await makeWorkspace("scheduled-batch");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const run = await createRunning(ws);
      await makeOverdue(run.id, 1_000 + i);
      ids.push(run.id);
    }
    const [line] = await cron(envWithVars({ SWEEP_BATCH_SIZE: "2" }));
    // A full batch of 2, then a short batch of 1 that drains.
    expect(line).toMatchObject({ examined: 3, batches: 2, reconciled: { "lifecycle.stale_running": 3 }, stoppedBy: "drained" });
    for (const id of ids) expect((await storedRow(id)).status).toBe("completed");
  });
});
