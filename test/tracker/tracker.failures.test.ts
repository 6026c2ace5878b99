/**
 * The tracker when things around it fail, and its housekeeping: an alarm
 * whose D1 write fails throws (so the platform retries it) and changes
 * nothing; the retried alarm then acts once. A terminal run's tracker deletes
 * its storage after TRACKER_RETENTION_MS; D1 stays the record.
 */
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TRACKER_RETENTION_MS, type RunTracker } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { failingD1, onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  createRun,
  deliver,
  expectAcked,
  getRun,
  runAlarm,
  tracker,
  trackerState,
  trackerStorageSize,
} from "../support/execution";

describe("an alarm whose D1 write fails", () => {
  it("throws so the platform retries it, changes nothing, and the retry resolves the run once", async () => {
    const ws = await makeWorkspace("failures");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, attempt: 1 })).toMatchObject({ ok: true });
    await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs + 1_000);
    const before = await snapshot(run.id);
    const armed = await alarmAt(run.id);
    expect(armed).not.toBeNull();

    const broken = failingD1("before-d1");
    await runInDurableObject(tracker(run.id), async (instance: RunTracker) => {
      // The object reads its D1 binding from `env` on every call; swap it for this one alarm.
      const real = instance["env"];
      instance["env"] = { ...real, DB: broken.db };
      try {
        await expect(instance.alarm()).rejects.toThrow("injected: D1 unavailable");
      } finally {
        instance["env"] = real;
      }
    });

    expect(broken.attempts()).toBe(1);
    expect(await snapshot(run.id)).toEqual(before);
    expect(await trackerState(run.id)).toMatchObject({ status: "running", attempt: 1 });
    // Still armed: nothing acknowledged the deadline.
    expect(await alarmAt(run.id)).toBe(armed);

    await runAlarm(run.id);

    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });
    expect(await onlyEvent(run.id, "run.attempt_lost")).toMatchObject({ actor: "system:tracker" });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_lost"]);
  });
});

describe("tracker retention", () => {
  it("a terminal run's tracker keeps its state for TRACKER_RETENTION_MS, then deletes all of it; D1 is untouched", async () => {
    const ws = await makeWorkspace("failures");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const completed = await trackerState(run.id);
    expect(completed).toMatchObject({ status: "completed", attempt: 1 });
    expect(await alarmAt(run.id)).toBe(completed!.completedAt! + TRACKER_RETENTION_MS);
    const record = await snapshot(run.id);

    // Just before the retention ends: the alarm waits.
    const almost = await ageTracker(run.id, TRACKER_RETENTION_MS - 1_000);
    await runAlarm(run.id);
    expect(await trackerState(run.id)).toEqual(almost);
    expect(await alarmAt(run.id)).toBe(almost.completedAt! + TRACKER_RETENTION_MS);

    await ageTracker(run.id, 2_000);
    await runAlarm(run.id);

    expect(await trackerStorageSize(run.id)).toBe(0);
    expect(await alarmAt(run.id)).toBeNull();
    expect(await tracker(run.id).status()).toEqual({ known: false });
    expect(await snapshot(run.id)).toEqual(record);

    // A late redelivery still finds the run terminal: D1 is the record, not the tracker.
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2 }]));
    expect(await snapshot(run.id)).toEqual(record);
  });

  it("a tracker whose run is gone from D1 clears itself when its alarm fires", async () => {
    const ws = await makeWorkspace("failures");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0 });
    await env.DB.prepare("DELETE FROM operation_runs WHERE id = ?").bind(run.id).run();
    await ageTracker(run.id, DEMO_POLICY.staleQueuedAfterMs + 1_000);

    await runAlarm(run.id);

    expect(await trackerStorageSize(run.id)).toBe(0);
    expect(await tracker(run.id).status()).toEqual({ known: false });
  });
});
