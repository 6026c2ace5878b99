/**
 * The tracker when things around it fail (contract v2 section 4, issue 9 items
 * 4, 7 and 8): D1 failing before commit, and after commit with the answer lost;
 * the tracker reset between the handler's return and the result write; a claim
 * whose answer is lost; a heartbeat's flush racing the result; an alarm that
 * keeps failing. Each keeps the result, runs the handler once, and ends with one
 * terminal event; errors outside the handler are recorded on the run.
 * Faults wrap the boundary (the tracker's D1 binding, the consumer's tracker
 * stub), never the code. Time passes by ageing the tracker (which also evicts it,
 * dropping an injected binding).
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { MAX_SENDS, backoffMs, trackerFor, type AttemptReport, type RunTracker } from "../../src/tracker";
import { makeWorkspace } from "../support/fixtures";
import { onlyEvent, snapshot } from "../support/runs";
import {
  DEMO_POLICY,
  OPERATIONS,
  actionsOf,
  ageTracker,
  alarmAt,
  createRun,
  deliver,
  expectAcked,
  faultyD1,
  getRun,
  patchTrackerEnv,
  runAlarm,
  tracker,
  trackerState,
  type D1FaultMode,
} from "../support/execution";

const TRANSITION = (sql: string) => sql.includes("SET status = ?");
const FLUSH = (sql: string) => sql.includes("SET last_heartbeat_at = ?1");

async function withFaultyD1(runId: string, fault: ReturnType<typeof faultyD1>): Promise<void> {
  await patchTrackerEnv(runId, (e) => ({ ...e, DB: fault.db }));
}

describe("an alarm whose D1 write fails", () => {
  it("does not throw: it records the error, re-arms itself with backoff, and the next alarm resolves the run once", async () => {
    const ws = await makeWorkspace("faults");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    await ageTracker(run.id, DEMO_POLICY.heartbeatTimeoutMs + 1_000);
    const before = await snapshot(run.id);
    const fault = faultyD1(TRANSITION, { mode: "before-commit" });
    await withFaultyD1(run.id, fault);

    await runAlarm(run.id);

    expect(fault.struck()).toBe(1);
    expect(await snapshot(run.id)).toEqual(before);
    const failed = await trackerState(run.id);
    expect(failed).toMatchObject({ status: "running", attempt: 1, failures: 1 });
    expect(failed?.errors.at(-1)).toMatchObject({ where: "alarm", message: expect.stringContaining("injected: D1 unavailable") });
    expect(await alarmAt(run.id)).toBe(failed!.retryAt);

    await ageTracker(run.id, backoffMs(1));
    await runAlarm(run.id);

    const lost = await getRun(run.id);
    expect(lost).toMatchObject({ status: "queued", attempt: 1 });
    // The error outside the handler is on the run, with its text, not only in a log line.
    expect(lost.diagnostics.infrastructureErrors).toEqual([expect.objectContaining({ where: "alarm", message: expect.stringContaining("injected: D1 unavailable") })]);
    expect(await onlyEvent(run.id, "run.attempt_lost")).toMatchObject({ actor: "system:tracker" });
    expect(await trackerState(run.id)).toMatchObject({ failures: 0, retryAt: null, errors: [] });
  });

  it("keeps re-arming past the platform's six alarm retries, with a backoff capped at 60 s", async () => {
    const ws = await makeWorkspace("faults");
    const { run } = await createRun(ws, { steps: 3, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const waits: number[] = [];
    for (let i = 1; i <= 9; i++) {
      await ageTracker(run.id, i === 1 ? DEMO_POLICY.heartbeatTimeoutMs + 1_000 : backoffMs(i - 1));
      await withFaultyD1(run.id, faultyD1(TRANSITION, { mode: "before-commit" }));
      await runAlarm(run.id);
      const s = await trackerState(run.id);
      expect(s?.failures).toBe(i);
      const armed = await alarmAt(run.id);
      expect(armed, `re-armed after failure ${i}`).toBe(s!.retryAt);
      waits.push(backoffMs(i));
    }
    expect(waits).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]);
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt: 1 });

    await ageTracker(run.id, backoffMs(9));
    await runAlarm(run.id);
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1 });
  });
});

describe("a result D1 cannot take at once", () => {
  for (const mode of ["before-commit", "after-commit"] as D1FaultMode[]) {
    it(`${mode}: the tracker holds it, the message is acked, the handler runs once, and one run.completed lands`, async () => {
      const ws = await makeWorkspace("faults");
      const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
      const fault = faultyD1((sql) => TRANSITION(sql) && !sql.includes("attempt_started"), { mode });
      // The claim goes through; the result write (the next transition) fails.
      let claimed = false;
      const stub = trackerFor(env, run.id);
      const consumerEnv = {
        ...env,
        RUN_TRACKER: {
          getByName: () => ({
            claim: async (req: { runId: string; dispatch: number | null }) => {
              const answer = await stub.claim(req);
              claimed = true;
              await withFaultyD1(run.id, fault);
              return answer;
            },
            heartbeat: (req: { attempt: number }) => stub.heartbeat(req),
            report: (req: AttemptReport) => stub.report(req),
          }),
        } as unknown as Env["RUN_TRACKER"],
      };

      expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], consumerEnv));
      expect(claimed).toBe(true);
      expect(fault.struck()).toBe(1);
      const held = await trackerState(run.id);
      expect(held?.pending).toMatchObject({ kind: "result", attempt: 1, outcome: "succeeded" });
      expect(held?.errors.at(-1)).toMatchObject({ where: "result_write" });
      expect((await getRun(run.id)).status).toBe(mode === "before-commit" ? "running" : "completed");

      await ageTracker(run.id, backoffMs(1));
      await runAlarm(run.id);

      expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1, reasonCode: null });
      // Re-applying the same result is a no-op, not a late result.
      expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
      expect(await trackerState(run.id)).toMatchObject({ status: "completed", pending: null, applied: { attempt: 1, kind: "result" } });
    });
  }

  it("a retryable failure D1 refused at first is applied by the alarm, which then sends the retry's dispatch", async () => {
    const ws = await makeWorkspace("faults");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    expect(await tracker(run.id).claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    await withFaultyD1(run.id, faultyD1(TRANSITION, { mode: "before-commit" }));

    const answer = await tracker(run.id).report({ kind: "failure", attempt: 1, reason: "handler.error", retryable: true, message: "boom" });
    expect(answer).toEqual({ ok: true, applied: false, status: "running" });

    await ageTracker(run.id, backoffMs(1));
    await runAlarm(run.id);
    expect(await getRun(run.id)).toMatchObject({ status: "queued", attempt: 1, diagnostics: { lastError: { attempt: 1, message: "boom" } } });
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", dispatch: { n: 2, sends: 1, claimed: false } });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed"]);
  });
});

describe("the tracker reset between the handler's return and the result write", () => {
  for (const when of ["before it stored the report", "after it stored the report (the answer lost)"]) {
    it(`${when}: the consumer tries again, the handler ran once, one run.completed`, async () => {
      const ws = await makeWorkspace("faults");
      const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
      const stub = trackerFor(env, run.id);
      let reports = 0;
      let claims = 0;
      const consumerEnv = {
        ...env,
        RUN_TRACKER: {
          getByName: () => ({
            claim: async (req: { runId: string; dispatch: number | null }) => {
              claims++;
              return stub.claim(req);
            },
            heartbeat: (req: { attempt: number }) => stub.heartbeat(req),
            report: async (req: AttemptReport) => {
              reports++;
              if (reports === 1) {
                if (when.startsWith("after")) await stub.report(req);
                throw new Error("Durable Object reset because its code was updated.");
              }
              return stub.report(req);
            },
          }),
        } as unknown as Env["RUN_TRACKER"],
      };

      expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], consumerEnv));

      expect(claims).toBe(1);
      expect(reports).toBe(2);
      expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
      expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
    });
  }
});

describe("a claim whose D1 write committed but whose answer was lost", () => {
  it("the message is retried, and its redelivery adopts the started attempt: the handler runs once, at attempt 1", async () => {
    const ws = await makeWorkspace("faults");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
    await withFaultyD1(run.id, faultyD1(TRANSITION, { mode: "after-commit" }));

    const first = await deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-claim" }]);
    expect(first.retries.map((r) => r.msgId)).toEqual(["m-claim"]);
    expect(await getRun(run.id)).toMatchObject({ status: "running", attempt: 1 });
    expect(await trackerState(run.id)).toMatchObject({ status: "queued", dispatch: { claimed: false }, errors: [expect.objectContaining({ where: "claim" })] });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2, id: "m-claim" }]));
    const after = await getRun(run.id);
    expect(after).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(after.diagnostics.infrastructureErrors).toEqual([expect.objectContaining({ where: "claim" })]);
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });
});

describe("calls that interleave across an await", () => {
  it("a heartbeat waiting on its D1 flush while the result lands: the result wins, nothing moves backwards", async () => {
    const ws = await makeWorkspace("faults");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    const t = tracker(run.id);
    expect(await t.claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    // Make the next heartbeat's flush due, then hold it inside D1.
    await ageTracker(run.id, DEFAULT_SETTINGS.heartbeatFlushIntervalMs + 1_000);
    let open: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const held = faultyD1(FLUSH, { gate });
    await withFaultyD1(run.id, held);

    const beat = t.heartbeat({ attempt: 1, progress: { total: 2, processed: 1, succeeded: 1, failed: 0 } });
    const report = t.report({ kind: "result", attempt: 1, outcome: "succeeded", progress: { total: 2, processed: 2, succeeded: 2, failed: 0 } });
    // Both calls are in: the heartbeat is inside D1 (struck), the report waits its turn.
    for (let i = 0; i < 100 && held.struck() === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(held.struck()).toBe(1);
    open();
    expect(await beat).toEqual({ ok: true });
    expect(await report).toEqual({ ok: true, applied: true, status: "completed" });

    expect(await trackerState(run.id)).toMatchObject({ status: "completed", progress: { processed: 2 } });
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", progress: { processed: 2 } });
    // And the tracker answers the late heartbeat from the state it really has.
    expect(await t.heartbeat({ attempt: 1 })).toEqual({ ok: false, refusal: "terminal" });
  });
});

describe("tracker retention", () => {
  it("a terminal run's tracker keeps its state for TRACKER_RETENTION_MS, then deletes all of it; D1 is untouched", async () => {
    const { TRACKER_RETENTION_MS } = await import("../../src/tracker");
    const ws = await makeWorkspace("faults");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
    const completed = await trackerState(run.id);
    expect(completed).toMatchObject({ status: "completed", attempt: 1 });
    expect(await alarmAt(run.id)).toBe(completed!.completedAt! + TRACKER_RETENTION_MS);
    const record = await snapshot(run.id);

    const almost = await ageTracker(run.id, TRACKER_RETENTION_MS - 1_000);
    await runAlarm(run.id);
    expect(await trackerState(run.id)).toEqual(almost);

    await ageTracker(run.id, 2_000);
    await runAlarm(run.id);

    expect(await alarmAt(run.id)).toBeNull();
    expect(await tracker(run.id).status()).toEqual({ known: false });
    expect(await snapshot(run.id)).toEqual(record);

    // A late redelivery finds no tracker and starts nothing; D1 is the record.
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 2 }]));
    expect(await snapshot(run.id)).toEqual(record);
  });

  it("a tracker whose run is gone from D1 clears itself when its alarm fires", async () => {
    const ws = await makeWorkspace("faults");
    const { run } = await createRun(ws, { steps: 1, stepMs: 0 });
    await env.DB.prepare("DELETE FROM operation_runs WHERE id = ?").bind(run.id).run();
    // Re-sent twice, then declared stale: the reconciliation finds no run.
    for (let i = 0; i < MAX_SENDS; i++) {
      await ageTracker(run.id, DEMO_POLICY.staleQueuedAfterMs / MAX_SENDS + 1_000);
      await runAlarm(run.id);
    }

    expect(await tracker(run.id).status()).toEqual({ known: false });
  });
});

export type { RunTracker };
