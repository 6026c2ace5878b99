/**
 * Run-126 regression: a run left `running` with neither a completion nor a
 * failure (its worker died after heartbeating) must not stay "Running"
 * forever. Once its threshold passes it is completed/failed — by its
 * tracker's alarm when the tracker can act, by the sweep when it cannot — and
 * the admin stops showing it as live work. Earlier attempts failed with a
 * retryable error, so the test also proves the original error survives the
 * reconciliation in diagnostics.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, explainReason } from "../../src/lifecycle";
import type { Diagnostics } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { ageTracker, createRun, runAlarm, tracker, trackerState } from "../support/execution";
import {
  backdate,
  DEMO_POLICY as P,
  diagnosticsOf,
  displayOf,
  drainOverdue,
  eventsOf,
  getRun,
  GRACE_MS,
  idsInDisplayState,
  makeOverdue,
  onlyEvent,
  service,
  storedRow,
  sweep,
  unableTracker,
} from "../support/sweep";

const ORIGINAL_ERROR = "Upstream inventory API answered 503 (connection reset by peer)";

/** Two retryable failures, then attempt 3 (= maxAttempts) claimed through the real tracker, one heartbeat, and silence. */
async function lastAttemptGoneSilentViaTracker(ws: string) {
  const { run } = await createRun(ws, { steps: 5, stepMs: 0 });
  const t = tracker(run.id);
  for (const attempt of [1, 2]) {
    expect(await t.claim({ runId: run.id, dispatch: attempt })).toMatchObject({ ok: true, run: { attempt } });
    const failed = await t.report({ kind: "failure", attempt, reason: "handler.error", retryable: true, message: `${ORIGINAL_ERROR} #${attempt}` });
    expect(failed).toEqual({ ok: true, applied: true, status: "queued" });
  }
  expect(await t.claim({ runId: run.id, dispatch: 3 })).toMatchObject({ ok: true, run: { attempt: 3 } });
  expect(await t.heartbeat({ attempt: 3, progress: { total: 5, processed: 2, succeeded: 2, failed: 0 } })).toEqual({ ok: true });
  return run;
}

describe("Run-126: running with no completion and no failure", () => {
  it("is failed by its tracker's alarm once the heartbeat timeout passes (lifecycle.heartbeat_lost)", async () => {
    const ws = await makeWorkspace("run126-alarm");
    const run = await lastAttemptGoneSilentViaTracker(ws);
    expect(P.maxAttempts).toBe(3);

    // A minute of silence, seen by both the tracker and D1 (flushed heartbeat
    // included), but still inside D1's stale threshold: only the alarm may act.
    const silenceMs = 60_000;
    expect(silenceMs).toBeGreaterThan(P.heartbeatTimeoutMs + DEFAULT_SETTINGS.heartbeatFlushIntervalMs);
    expect(silenceMs).toBeLessThan(P.staleRunningAfterMs);
    const aged = await ageTracker(run.id, silenceMs);
    await backdate(run.id, silenceMs);

    // Before: the run is shown as stale, not as live work.
    const before = await getRun(run.id);
    expect(before).toMatchObject({ status: "running", attempt: 3 });
    expect(displayOf(before)).toMatchObject({ kind: "running_stale", live: false });
    expect(await idsInDisplayState(ws, "running")).not.toContain(run.id);
    expect(await idsInDisplayState(ws, "running_stale")).toContain(run.id);

    await runAlarm(run.id);

    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 3,
      reason_code: "lifecycle.heartbeat_lost",
      reconciled_by: "tracker_alarm",
      deadline_at: null,
      failure_message: explainReason("lifecycle.heartbeat_lost").whatHappened,
    });
    expect(row.completed_at).toBeGreaterThanOrEqual(aged.lastHeartbeatAt! + P.heartbeatTimeoutMs);
    const d: Diagnostics = diagnosticsOf(row);
    expect(d.detectedBy).toBe("tracker_alarm");
    expect(d.evidence).toMatchObject({
      lastHeartbeatAt: aged.lastHeartbeatAt,
      deadline: aged.lastHeartbeatAt! + P.heartbeatTimeoutMs,
      heartbeatTimeoutMs: P.heartbeatTimeoutMs,
    });
    // The original error of attempt 2 is kept next to the reconciliation reason.
    expect(d.lastError).toMatchObject({ attempt: 2, reasonCode: "handler.error", message: `${ORIGINAL_ERROR} #2` });
    expect(d.attempts.map((a) => [a.attempt, a.ended])).toEqual([
      [1, "handler.error"],
      [2, "handler.error"],
      [3, "heartbeat lost"],
    ]);

    const reconciled = await onlyEvent(run.id, "run.reconciled");
    expect(reconciled).toMatchObject({ actor: "system:tracker", metadata: { from: "running", to: "completed", attempt: 3 } });
    expect(reconciled.metadata.lastError).toBe(`${ORIGINAL_ERROR} #2`);
    expect((await eventsOf(run.id)).map((e) => e.action)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.reconciled",
    ]);

    // After: no longer active work, in the core's display state and in the SQL filter.
    const after = await getRun(run.id);
    expect(displayOf(after)).toMatchObject({ kind: "failed_reconciled", live: false, detector: "tracker_alarm" });
    for (const kind of ["running", "running_stale", "queued", "queued_overdue"] as const) {
      expect(await idsInDisplayState(ws, kind), kind).not.toContain(run.id);
    }
    expect(await idsInDisplayState(ws, "failed_reconciled")).toEqual([run.id]);
    // The tracker follows D1: it now holds the run as completed.
    expect(await trackerState(run.id)).toMatchObject({ status: "completed", attempt: 3 });
  });

  it.each(["rejects", "hangs"] as const)(
    "is failed by the sweep when the tracker cannot act (tracker %s): lifecycle.stale_running with the evidence",
    async (mode) => {
      await drainOverdue();
      const ws = await makeWorkspace(`run126-sweep-${mode}`);
      const svc = service();
      const created = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 5, stepMs: 0 }, initiator: "user:ops" });
      if (!created.ok) throw new Error("not created");
      const id = created.run.id;
      for (const attempt of [1, 2]) {
        expect((await svc.claim(id, attempt)).ok).toBe(true);
        const failed = await svc.failAttempt(id, attempt, { reason: "handler.error", retryable: true, error: new Error(`${ORIGINAL_ERROR} #${attempt}`) });
        expect(failed.ok && failed.run.status).toBe("queued");
      }
      expect((await svc.claim(id, 3)).ok).toBe(true);

      // The heartbeat stopped long ago: D1's deadline (last flushed heartbeat +
      // staleRunningAfterMs) is 2 minutes beyond the grace.
      const now = Date.now();
      const overdue = await makeOverdue(id, 120_000, now);
      expect(overdue.last_heartbeat_at! + P.staleRunningAfterMs).toBe(overdue.deadline_at);
      expect(displayOf(await getRun(id), now)).toMatchObject({ kind: "running_stale", live: false });

      const unable = unableTracker(mode);
      const report = await sweep({ tracker: unable.tracker, trackerTimeoutMs: 50 });
      expect(unable.asked).toEqual([id]);
      expect(unable.refreshed).toEqual([]);
      expect(report).toMatchObject({
        examined: 1,
        reconciled: { "lifecycle.stale_running": 1 },
        refreshed: 0,
        lostRace: 0,
        trackerUnavailable: 1,
        failed: 0,
        stoppedBy: "drained",
      });

      const row = await storedRow(id);
      expect(row).toMatchObject({
        status: "completed",
        outcome: "failed",
        attempt: 3,
        reason_code: "lifecycle.stale_running",
        reconciled_by: "sweep",
        deadline_at: null,
        failure_message: explainReason("lifecycle.stale_running").whatHappened,
      });
      const d = diagnosticsOf(row);
      expect(d.detectedBy).toBe("sweep");
      expect(d.evidence).toMatchObject({
        lastHeartbeatAt: overdue.last_heartbeat_at,
        deadlineAt: overdue.deadline_at,
        attempt: 3,
        maxAttempts: 3,
        tracker: mode === "rejects" ? "unavailable: injected: tracker unreachable" : "unavailable: no answer within 50 ms",
      });
      const overdueBy = d.evidence?.overdueByMs;
      expect(typeof overdueBy === "number" && overdueBy >= 120_000 + GRACE_MS).toBe(true);
      expect(d.thresholds).toMatchObject({
        staleRunningAfterMs: P.staleRunningAfterMs,
        heartbeatTimeoutMs: P.heartbeatTimeoutMs,
        sweepGraceMs: GRACE_MS,
        maxAttempts: 3,
      });
      expect(d.lastError).toMatchObject({ attempt: 2, reasonCode: "handler.error", message: `${ORIGINAL_ERROR} #2` });

      const event = await onlyEvent(id, "run.reconciled");
      expect(event).toMatchObject({
        actor: "system:sweep",
        metadata: {
          reason: "lifecycle.stale_running",
          observed: { status: "running", attempt: 3 },
          lastError: `${ORIGINAL_ERROR} #2`,
        },
      });

      const after = await getRun(id);
      expect(displayOf(after)).toMatchObject({ kind: "failed_reconciled", live: false, detector: "sweep", label: "Failed · reconciled by sweep" });
      for (const kind of ["running", "running_stale", "queued", "queued_overdue"] as const) {
        expect(await idsInDisplayState(ws, kind), kind).not.toContain(id);
      }
      expect(await idsInDisplayState(ws, "failed_reconciled")).toEqual([id]);
    },
  );
});
