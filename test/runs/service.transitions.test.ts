/**
 * Every transition of the contract (section 2) through RunService on real D1:
 * the row as stored and the audit event the winning write emits. A manual
 * clock makes every deadline an exact number.
 */
import { describe, expect, it } from "vitest";
import { EMPTY_PROGRESS, explainReason, type FinalOutcome } from "../../src/lifecycle";
import type { Diagnostics } from "../../src/runs";
import { makeWorkspace, manualClock, runService } from "../support/fixtures";
import { DEMO, DEMO_INPUT, DEMO_POLICY as P } from "../support/demo";
import { T0, eventsOf, newRun, onlyEvent, parsed, storedRow } from "../support/runs";

const RETRY_DELAY_MS = P.retryDelaySeconds * 1000;

async function setup() {
  const ws = await makeWorkspace("transitions");
  const clock = manualClock(T0);
  const svc = runService(clock.now);
  return { ws, clock, svc };
}

const diagnosticsOf = async (runId: string) => parsed<Diagnostics>((await storedRow(runId)).diagnostics);
const actionsOf = async (runId: string) => (await eventsOf(runId)).map((e) => e.action);

describe("create", () => {
  it("stores a queued run at attempt 0, deadline = created + staleQueuedAfterMs, and one run.queued", async () => {
    const { ws, svc } = await setup();
    const run = await newRun(svc, ws);
    const row = await storedRow(run.id);
    expect(row.id).toMatch(/^run_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(row).toMatchObject({
      workspace_id: ws,
      type: DEMO,
      status: "queued",
      outcome: "pending",
      attempt: 0,
      max_attempts: P.maxAttempts,
      created_at: T0,
      updated_at: T0,
      started_at: null,
      completed_at: null,
      last_heartbeat_at: null,
      deadline_at: T0 + P.staleQueuedAfterMs,
      reason_code: null,
      failure_message: null,
      reconciled_by: null,
      idempotency_key: null,
      initiator: "user:test",
    });
    expect(parsed(row.input)).toEqual(DEMO_INPUT);
    expect(parsed(row.progress)).toEqual(EMPTY_PROGRESS);
    const events = await eventsOf(run.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      action: "run.queued",
      actor: "user:test",
      workspaceId: ws,
      createdAt: T0,
      metadata: { type: DEMO, maxAttempts: P.maxAttempts, idempotencyKey: null },
    });
  });
});

describe("claim", () => {
  it("attempt 1 makes the run running with started_at, last_heartbeat_at and deadline = now + staleRunningAfterMs", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const now = clock.advance(1_500);
    const answer = await svc.claim(run.id, 1);
    expect(answer.ok && answer.transition.takeover).toBe(false);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "running",
      outcome: "pending",
      attempt: 1,
      started_at: now,
      last_heartbeat_at: now,
      deadline_at: now + P.staleRunningAfterMs,
      updated_at: now,
      completed_at: null,
    });
    expect(parsed<Diagnostics>(row.diagnostics).attempts).toEqual([{ attempt: 1, startedAt: now }]);
    const started = await onlyEvent(run.id, "run.attempt_started");
    expect(started).toMatchObject({ actor: "system:consumer", createdAt: now, metadata: { from: "queued", to: "running", attempt: 1 } });
    expect(started.metadata).not.toHaveProperty("takeover");
  });

  it("attempt 2 while attempt 1 runs takes over: attempt 2, first start kept, takeover in the event and attempt 1 ended as fenced", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const firstStart = clock.advance(1_000);
    await svc.claim(run.id, 1);
    const now = clock.advance(30_000);
    const answer = await svc.claim(run.id, 2);
    expect(answer.ok && answer.transition.takeover).toBe(true);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "running",
      attempt: 2,
      started_at: firstStart,
      last_heartbeat_at: now,
      deadline_at: now + P.staleRunningAfterMs,
    });
    expect(parsed<Diagnostics>(row.diagnostics).attempts).toEqual([
      { attempt: 1, startedAt: firstStart, endedAt: now, ended: "fenced (taken over)" },
      { attempt: 2, startedAt: now },
    ]);
    const events = (await eventsOf(run.id)).filter((e) => e.action === "run.attempt_started");
    expect(events.map((e) => e.metadata)).toEqual([
      { from: "queued", to: "running", attempt: 1 },
      { from: "running", to: "running", attempt: 2, takeover: true, fencedAttempt: 1 },
    ]);
  });
});

describe("complete", () => {
  const progress = { total: 3, processed: 3, succeeded: 2, failed: 1 };
  it.each<{ outcome: FinalOutcome; reason: string | null; storedMessage: string | null }>([
    { outcome: "succeeded", reason: null, storedMessage: null },
    { outcome: "partially_succeeded", reason: null, storedMessage: "1 of 3 items failed." },
    { outcome: "failed", reason: "handler.failed", storedMessage: "1 of 3 items failed." },
  ])("outcome $outcome: completed, reason $reason, deadline cleared, one run.completed", async ({ outcome, reason, storedMessage }) => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const claimedAt = clock.advance(1_000);
    await svc.claim(run.id, 1);
    const now = clock.advance(2_000);
    const answer = await svc.complete(run.id, 1, { outcome, message: "1 of 3 items failed.", progress });
    expect(answer.ok).toBe(true);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome,
      attempt: 1,
      reason_code: reason,
      // A succeeded run carries no failure message even if the handler sent one.
      failure_message: storedMessage,
      reconciled_by: null,
      deadline_at: null,
      completed_at: now,
      started_at: claimedAt,
      updated_at: now,
    });
    expect(parsed(row.progress)).toEqual(progress);
    expect(parsed<Diagnostics>(row.diagnostics).attempts).toEqual([{ attempt: 1, startedAt: claimedAt, endedAt: now, ended: outcome }]);
    const done = await onlyEvent(run.id, "run.completed");
    expect(done.metadata).toEqual({ from: "running", to: "completed", attempt: 1, outcome, message: "1 of 3 items failed.", progress });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });
});

describe("failAttempt", () => {
  it("retryable with attempts left: queued again, deadline = now + retryDelay + staleQueuedAfterMs, lastError kept into the next attempt", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    clock.advance(1_000);
    await svc.claim(run.id, 1);
    const failedAt = clock.advance(4_000);
    const answer = await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("upstream answered 503") });
    expect(answer.ok && answer.transition.to.status).toBe("queued");
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "queued",
      outcome: "pending",
      attempt: 1,
      deadline_at: failedAt + RETRY_DELAY_MS + P.staleQueuedAfterMs,
      completed_at: null,
      reason_code: null,
      failure_message: null,
    });
    const lastError = { attempt: 1, message: "upstream answered 503", reasonCode: "handler.error", at: failedAt };
    expect(parsed<Diagnostics>(row.diagnostics).lastError).toEqual(lastError);
    const failed = await onlyEvent(run.id, "run.attempt_failed");
    expect(failed).toMatchObject({
      actor: "system:consumer",
      metadata: { from: "running", to: "queued", attempt: 1, reason: "handler.error", error: "upstream answered 503", retryAt: failedAt + RETRY_DELAY_MS },
    });

    clock.advance(RETRY_DELAY_MS);
    await svc.claim(run.id, 2);
    expect((await diagnosticsOf(run.id)).lastError).toEqual(lastError);
  });

  it("retryable but on the last attempt: completed/failed with its reason and one run.failed", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    for (let attempt = 1; attempt < P.maxAttempts; attempt++) {
      clock.advance(1_000);
      await svc.claim(run.id, attempt);
      await svc.failAttempt(run.id, attempt, { reason: "handler.error", retryable: true, error: new Error(`boom ${attempt}`) });
    }
    clock.advance(1_000);
    await svc.claim(run.id, P.maxAttempts);
    const now = clock.advance(1_000);
    const answer = await svc.failAttempt(run.id, P.maxAttempts, { reason: "handler.error", retryable: true, error: new Error("boom last") });
    expect(answer.ok && answer.transition.action).toBe("run.failed");
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: P.maxAttempts,
      reason_code: "handler.error",
      reconciled_by: null,
      // Operator-safe: the raw error text stays in diagnostics.
      failure_message: `Attempt ${P.maxAttempts} of ${P.maxAttempts} failed with an error; the error is in diagnostics.`,
      deadline_at: null,
      completed_at: now,
    });
    const failed = await onlyEvent(run.id, "run.failed");
    expect(failed.metadata).toEqual({ from: "running", to: "completed", attempt: P.maxAttempts, reason: "handler.error", error: "boom last", retryable: true });
    expect((await actionsOf(run.id)).filter((a) => a === "run.attempt_failed")).toHaveLength(P.maxAttempts - 1);
  });

  it("not retryable with attempts left: completed/failed at once with its reason", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    clock.advance(1_000);
    await svc.claim(run.id, 1);
    const now = clock.advance(300_000);
    await svc.failAttempt(run.id, 1, { reason: "attempt.timeout", retryable: false, error: new Error("attempt exceeded 300000 ms") });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      reason_code: "attempt.timeout",
      reconciled_by: null,
      failure_message: `Attempt 1 of ${P.maxAttempts} failed: attempt exceeded 300000 ms`,
      deadline_at: null,
      completed_at: now,
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.failed"]);
  });
});

describe("heartbeatLost", () => {
  it("with attempts left: queued to await redelivery, deadline = now + staleQueuedAfterMs, one run.attempt_lost", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const claimedAt = clock.advance(1_000);
    await svc.claim(run.id, 1);
    const now = clock.advance(P.heartbeatTimeoutMs);
    const evidence = { lastHeartbeatAt: claimedAt, heartbeatTimeoutMs: P.heartbeatTimeoutMs };
    await svc.heartbeatLost(run.id, 1, evidence);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "queued",
      outcome: "pending",
      attempt: 1,
      deadline_at: now + P.staleQueuedAfterMs,
      reason_code: null,
      reconciled_by: null,
      completed_at: null,
    });
    const lost = await onlyEvent(run.id, "run.attempt_lost");
    expect(lost).toMatchObject({ actor: "system:tracker", metadata: { from: "running", to: "queued", attempt: 1, evidence } });
  });

  it("on the last attempt: lifecycle.heartbeat_lost by tracker_alarm, run.reconciled, and the original lastError kept", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    clock.advance(1_000);
    await svc.claim(run.id, 1);
    const firstFailure = clock.advance(1_000);
    await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("the original error") });
    for (let attempt = 2; attempt <= P.maxAttempts; attempt++) {
      clock.advance(RETRY_DELAY_MS);
      await svc.claim(run.id, attempt);
      clock.advance(P.heartbeatTimeoutMs);
      if (attempt < P.maxAttempts) await svc.heartbeatLost(run.id, attempt, { attempt });
    }
    const now = clock.now();
    const evidence = { lastHeartbeatAt: now - P.heartbeatTimeoutMs, deadline: now };
    const answer = await svc.heartbeatLost(run.id, P.maxAttempts, evidence);
    expect(answer.ok && answer.transition.action).toBe("run.reconciled");
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: P.maxAttempts,
      reason_code: "lifecycle.heartbeat_lost",
      reconciled_by: "tracker_alarm",
      failure_message: explainReason("lifecycle.heartbeat_lost").whatHappened,
      deadline_at: null,
      completed_at: now,
    });
    const d = parsed<Diagnostics>(row.diagnostics);
    expect(d.lastError).toEqual({ attempt: 1, message: "the original error", reasonCode: "handler.error", at: firstFailure });
    expect(d.detectedBy).toBe("tracker_alarm");
    expect(d.evidence).toEqual(evidence);
    const reconciled = await onlyEvent(run.id, "run.reconciled");
    expect(reconciled).toMatchObject({ actor: "system:tracker", metadata: { attempt: P.maxAttempts, evidence, lastError: "the original error" } });
    expect(await actionsOf(run.id)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      ...Array.from({ length: P.maxAttempts - 2 }, () => ["run.attempt_started", "run.attempt_lost"]).flat(),
      "run.attempt_started",
      "run.reconciled",
    ]);
  });
});

describe("reconcile", () => {
  it("sweep on a stale running run: lifecycle.stale_running, reconciled_by sweep, evidence and thresholds in diagnostics", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const claimedAt = clock.advance(1_000);
    await svc.claim(run.id, 1);
    const now = clock.advance(P.staleRunningAfterMs + 15_000);
    const evidence = { lastHeartbeatAt: claimedAt, deadlineAt: claimedAt + P.staleRunningAfterMs, trackerAnswer: "no lease" };
    await svc.reconcile(run.id, { detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      reason_code: "lifecycle.stale_running",
      reconciled_by: "sweep",
      failure_message: explainReason("lifecycle.stale_running").whatHappened,
      deadline_at: null,
      completed_at: now,
    });
    const d = parsed<Diagnostics>(row.diagnostics);
    expect(d).toMatchObject({ detectedBy: "sweep", evidence, thresholds: { staleRunningAfterMs: P.staleRunningAfterMs } });
    const reconciled = await onlyEvent(run.id, "run.reconciled");
    expect(reconciled).toMatchObject({
      actor: "system:sweep",
      metadata: { from: "running", to: "completed", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence, lastError: null },
    });
  });

  it("tracker on a never-started run: lifecycle.stale_queued at attempt 0, reconciled_by tracker_alarm", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    const now = clock.advance(P.staleQueuedAfterMs);
    const evidence = { createdAt: T0, deadlineAt: T0 + P.staleQueuedAfterMs };
    await svc.reconcile(run.id, { detector: "tracker_alarm", reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 }, evidence });
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 0,
      started_at: null,
      reason_code: "lifecycle.stale_queued",
      reconciled_by: "tracker_alarm",
      deadline_at: null,
      completed_at: now,
    });
    expect(parsed<Diagnostics>(row.diagnostics)).toMatchObject({ detectedBy: "tracker_alarm", evidence });
    const reconciled = await onlyEvent(run.id, "run.reconciled");
    expect(reconciled).toMatchObject({ actor: "system:tracker", metadata: { from: "queued", reason: "lifecycle.stale_queued" } });
  });
});

describe("deadLetter", () => {
  it("queue.max_attempts_exceeded, reconciled_by dead_letter, the last error of the attempts kept", async () => {
    const { ws, clock, svc } = await setup();
    const run = await newRun(svc, ws);
    clock.advance(1_000);
    await svc.claim(run.id, 1);
    clock.advance(1_000);
    await svc.failAttempt(run.id, 1, { reason: "handler.error", retryable: true, error: new Error("database timeout") });
    const now = clock.advance(60_000);
    const evidence = { messageAttempts: 3, queue: "operations-dlq" };
    await svc.deadLetter(run.id, evidence);
    const row = await storedRow(run.id);
    expect(row).toMatchObject({
      status: "completed",
      outcome: "failed",
      reason_code: "queue.max_attempts_exceeded",
      reconciled_by: "dead_letter",
      failure_message: explainReason("queue.max_attempts_exceeded").whatHappened,
      deadline_at: null,
      completed_at: now,
    });
    const d = parsed<Diagnostics>(row.diagnostics);
    expect(d).toMatchObject({ detectedBy: "dead_letter", evidence, lastError: { attempt: 1, message: "database timeout" } });
    const reconciled = await onlyEvent(run.id, "run.reconciled");
    expect(reconciled).toMatchObject({ actor: "system:dead-letter", metadata: { from: "queued", to: "completed", evidence, lastError: "database timeout" } });
  });
});
