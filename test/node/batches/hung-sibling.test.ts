/**
 * A hung attempt holds its whole batch: on the platform a batch's acks and
 * retries take effect when its invocation ends, and the local queue
 * (miniflare) delivers one batch at a time per queue. Its siblings' verdicts
 * must not change because of it (lifecycle design, issue 9, expected verdicts
 * 2 and 11): a retry is a new dispatch, and staleQueuedAfterMs covers the
 * longest a batch can hold one (T5).
 *
 * Real batches through `wrangler dev` (the production Worker and wrangler.toml:
 * max_batch_size 10, max_batch_timeout 2 s). No durations are asserted: each
 * test waits for its run's verdict with a deadline of minutes, then checks the
 * verdict and the order of its audit events.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../support/local-runtime";
import { count, eventId, transitions } from "../support/verdicts";

const MIN = 60_000;

describe("siblings of a hung attempt in a real batch", () => {
  let rt: LocalRuntime;
  const ids = { hung: "", throwOnce: "", throwAlways: "", timeout: "" };

  beforeAll(async () => {
    rt = await LocalRuntime.start("hung-sibling");
    // Sent at once, so the queue puts them in one batch (it waits max_batch_timeout, 2 s, for more).
    [ids.hung, ids.throwOnce, ids.throwAlways, ids.timeout] = await Promise.all([
      rt.createRun({ steps: 2, stepMs: 50, hangAtStep: 1 }),
      rt.createRun({ steps: 2, stepMs: 50, throwAtStep: 1, throwTimes: 1 }),
      rt.createRun({ steps: 2, stepMs: 50, throwAtStep: 1, throwTimes: 99 }),
      rt.createRun({ steps: 3, stepMs: 200, hangAtStep: 2, timeoutMs: 3_000 }),
    ]);
  }, 5 * MIN);

  afterAll(async () => {
    await rt?.stop();
  }, MIN);

  it("a run that throws once beside a hung sibling succeeds on its second attempt (verdict 2, B)", async () => {
    const run = await rt.waitTerminal(ids.throwOnce, 6 * MIN);
    const trail = (await rt.auditTrails([ids.throwOnce])).get(ids.throwOnce)!;
    expect({ outcome: run.outcome, reasonCode: run.reasonCode, reconciledBy: run.reconciledBy, attempt: run.attempt }).toEqual({
      outcome: "succeeded",
      reasonCode: null,
      reconciledBy: null,
      attempt: 2,
    });
    expect(transitions(trail)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed", "run.attempt_started", "run.completed"]);
    expect(count(trail, "run.reconciled")).toBe(0);
  }, 7 * MIN);

  it("a run that always throws beside a hung sibling spends its three attempts and fails handler.error (verdict 2, C)", async () => {
    const run = await rt.waitTerminal(ids.throwAlways, 6 * MIN);
    const trail = (await rt.auditTrails([ids.throwAlways])).get(ids.throwAlways)!;
    expect({ outcome: run.outcome, reasonCode: run.reasonCode, reconciledBy: run.reconciledBy, attempt: run.attempt, maxAttempts: run.maxAttempts }).toEqual({
      outcome: "failed",
      reasonCode: "handler.error",
      reconciledBy: null,
      attempt: 3,
      maxAttempts: 3,
    });
    expect(transitions(trail)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.failed",
    ]);
  }, 7 * MIN);

  it("an attempt that times out after a step is retried, fails attempt.timeout at 3 of 3 and keeps its progress (verdict 11)", async () => {
    const run = await rt.waitTerminal(ids.timeout, 8 * MIN);
    const trail = (await rt.auditTrails([ids.timeout])).get(ids.timeout)!;
    expect({ outcome: run.outcome, reasonCode: run.reasonCode, reconciledBy: run.reconciledBy, attempt: run.attempt, maxAttempts: run.maxAttempts }).toEqual({
      outcome: "failed",
      reasonCode: "attempt.timeout",
      reconciledBy: null,
      attempt: 3,
      maxAttempts: 3,
    });
    // Step 1 of 3 was done before the hang at step 2: the last known progress, not 0 of 0.
    expect(run.progress).toMatchObject({ total: 3, processed: 1 });
    expect(transitions(trail)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.failed",
    ]);
  }, 9 * MIN);

  it("the hung run itself is retried after each policy timeout and fails attempt.timeout at 3 of 3", async () => {
    const run = await rt.waitTerminal(ids.hung, 12 * MIN);
    const trails = await rt.auditTrails([ids.hung, ids.throwOnce]);
    const trail = trails.get(ids.hung)!;
    expect({ outcome: run.outcome, reasonCode: run.reasonCode, reconciledBy: run.reconciledBy, attempt: run.attempt }).toEqual({
      outcome: "failed",
      reasonCode: "attempt.timeout",
      reconciledBy: null,
      attempt: 3,
    });
    expect(run.progress).toMatchObject({ total: 2, processed: 0 });
    expect(transitions(trail)).toEqual([
      "run.queued",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.attempt_failed",
      "run.attempt_started",
      "run.failed",
    ]);
    // The sibling's retry did not wait for the hung run's verdict.
    expect(eventId(trails.get(ids.throwOnce)!, "run.completed") < eventId(trail, "run.failed")).toBe(true);
  }, 13 * MIN);
});
