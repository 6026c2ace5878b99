/**
 * `dieAtStep` is a crash, as on the platform: the consumer invocation ends
 * with an exception at that step, the queue redelivers the whole batch (the
 * redelivered messages find their dispatch claimed and start nothing), every
 * sibling running in that invocation dies with it, and each run's tracker
 * declares its attempt lost 5 s after its last heartbeat and dispatches the
 * next one at once (lifecycle design, issue 9, expected verdicts 1 and 3).
 *
 * Real batches through `wrangler dev` (the production Worker and wrangler.toml).
 * The scenarios run one after another on one runtime, each waiting until all
 * its runs are terminal, so no crash of one scenario can kill another's
 * attempts. No durations are asserted: verdicts and the order of audit events.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime } from "../support/local-runtime";
import { count, eventId, expectVerdictFromEvidence, transitions, type Expected } from "../support/verdicts";

const MIN = 60_000;

/** A run that dies at a step on every attempt: three crashes, three losses, heartbeat_lost. */
const DIED_THREE_TIMES = [
  "run.queued",
  "run.attempt_started",
  "run.attempt_lost",
  "run.attempt_started",
  "run.attempt_lost",
  "run.attempt_started",
  "run.reconciled",
];

describe("crashed consumer invocations in real batches", () => {
  let rt: LocalRuntime;

  beforeAll(async () => {
    rt = await LocalRuntime.start("crash");
  }, 5 * MIN);

  afterAll(async () => {
    await rt?.stop();
  }, MIN);

  it("a run that dies at step 2 spends its three attempts and ends heartbeat_lost, never stale_queued (verdict 1)", async () => {
    const id = await rt.createRun({ steps: 3, stepMs: 500, dieAtStep: 2 });
    const run = await rt.waitTerminal(id, 6 * MIN);
    const trail = (await rt.auditTrails([id])).get(id)!;
    expect({
      outcome: run.outcome,
      reasonCode: run.reasonCode,
      reconciledBy: run.reconciledBy,
      attempt: run.attempt,
      maxAttempts: run.maxAttempts,
    }).toEqual({ outcome: "failed", reasonCode: "lifecycle.heartbeat_lost", reconciledBy: "tracker_alarm", attempt: 3, maxAttempts: 3 });
    expect(transitions(trail)).toEqual(DIED_THREE_TIMES);
    expect(count(trail, "run.reconciled")).toBe(1);
  }, 7 * MIN);

  it("the README's dying sample does not block the queue: a run created while it runs succeeds at attempt 1 (verdict 3)", async () => {
    const dying = await rt.createRun({ steps: 5, stepMs: 200, dieAtStep: 3 });
    // Its batch is already delivered: the next run travels in a later batch, behind the crash.
    await rt.waitForRun(dying, "running its first attempt", (r) => r.status === "running" && r.attempt === 1, 5 * MIN);
    const next = await rt.createRun({ steps: 1, stepMs: 0 });

    const nextRun = await rt.waitTerminal(next, 6 * MIN);
    const dyingRun = await rt.waitTerminal(dying, 6 * MIN);
    const trails = await rt.auditTrails([dying, next]);

    expect({ outcome: nextRun.outcome, reasonCode: nextRun.reasonCode, attempt: nextRun.attempt }).toEqual({
      outcome: "succeeded",
      reasonCode: null,
      attempt: 1,
    });
    expect(transitions(trails.get(next)!)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
    expect({ outcome: dyingRun.outcome, reasonCode: dyingRun.reasonCode, attempt: dyingRun.attempt }).toEqual({
      outcome: "failed",
      reasonCode: "lifecycle.heartbeat_lost",
      attempt: 3,
    });
    expect(transitions(trails.get(dying)!)).toEqual(DIED_THREE_TIMES);
    // It did not wait for the dying run to be resolved.
    expect(eventId(trails.get(next)!, "run.completed") < eventId(trails.get(dying)!, "run.reconciled")).toBe(true);
  }, 13 * MIN);

  it("the siblings in a crashed batch end with the verdicts their own behaviour and the crashes explain", async () => {
    // Sent at once, so they share the dying run's first batch; it dies 2 s into its attempt.
    const siblings: [Record<string, number>, Expected][] = [
      [{ steps: 6, stepMs: 1_000 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 6, stepMs: 1_000, partialAtStep: 2 }, { outcome: "partially_succeeded", reasonCode: null }],
      [{ steps: 6, stepMs: 1_000, failAtStep: 6 }, { outcome: "failed", reasonCode: "handler.failed" }],
      [{ steps: 2, stepMs: 100, throwAtStep: 1, throwTimes: 1 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 1, stepMs: 0 }, { outcome: "succeeded", reasonCode: null }],
    ];
    const [dying, ...siblingIds] = await Promise.all([
      rt.createRun({ steps: 3, stepMs: 1_000, dieAtStep: 3 }),
      ...siblings.map(([input]) => rt.createRun(input)),
    ]);
    const dyingRun = await rt.waitTerminal(dying!, 8 * MIN);
    const siblingRuns = [];
    for (const id of siblingIds) siblingRuns.push(await rt.waitTerminal(id, 8 * MIN));
    const trails = await rt.auditTrails([dying!, ...siblingIds]);

    expect({ outcome: dyingRun.outcome, reasonCode: dyingRun.reasonCode, reconciledBy: dyingRun.reconciledBy, attempt: dyingRun.attempt }).toEqual({
      outcome: "failed",
      reasonCode: "lifecycle.heartbeat_lost",
      reconciledBy: "tracker_alarm",
      attempt: 3,
    });
    expect(transitions(trails.get(dying!)!)).toEqual(DIED_THREE_TIMES);
    // Each of its three attempts crashed its batch: a sibling can have lost at most three attempts to it.
    const crashes = count(trails.get(dying!)!, "run.attempt_started");
    siblingRuns.forEach((run, i) => expectVerdictFromEvidence(run, trails.get(run.id)!, siblings[i]![1], crashes));
    // The crash killed the siblings that were still running (6 s of work against a crash 2 s in): each such
    // loss was true, and was followed by a new dispatch rather than a wait for a redelivery.
    const longOnes = siblingIds.slice(0, 3).map((id) => trails.get(id)!);
    expect(longOnes.map((t) => count(t, "run.attempt_lost")).some((n) => n > 0)).toBe(true);
  }, 18 * MIN);
});
