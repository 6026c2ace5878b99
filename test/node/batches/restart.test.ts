/**
 * The whole runtime dies (SIGKILL of wrangler dev and workerd, as a crashed
 * host or a deploy would end it) while attempts run and dispatches wait in the
 * queue, then starts again on the same state. The local queue loses what it
 * held; the runs' trackers keep their storage and alarms. Every run must still
 * reach exactly one terminal state, with the verdict its behaviour and the one
 * kill explain, and none may end `lifecycle.stale_queued` while the tracker
 * could re-send its dispatch (contract v2 section 4: a dispatch nobody claimed
 * is re-sent before the run is declared stale).
 *
 * Real batches through `wrangler dev` (the production Worker and wrangler.toml).
 * No durations are asserted: states are waited for with deadlines of minutes.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalRuntime, type ApiRun } from "../support/local-runtime";
import { count, eventId, expectVerdictFromEvidence, type Expected } from "../support/verdicts";

const MIN = 60_000;

describe("wrangler dev killed mid-attempt and restarted on the same state", () => {
  let rt: LocalRuntime;

  beforeAll(async () => {
    rt = await LocalRuntime.start("restart");
  }, 5 * MIN);

  afterAll(async () => {
    await rt?.stop();
  }, MIN);

  it("every run converges to the verdict its behaviour and the kill explain; none ends stale_queued", async () => {
    // One batch (8 ≤ max_batch_size): 8 s of work each for the long ones, so it is still running at the kill.
    const first: [Record<string, number>, Expected][] = [
      [{ steps: 8, stepMs: 1_000 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 8, stepMs: 1_000 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 8, stepMs: 1_000 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 8, stepMs: 1_000, partialAtStep: 3 }, { outcome: "partially_succeeded", reasonCode: null }],
      [{ steps: 8, stepMs: 1_000, failAtStep: 8 }, { outcome: "failed", reasonCode: "handler.failed" }],
      // Fails its first attempt at once; its retry waits in the queue (5 s delay) when the kill comes.
      [{ steps: 2, stepMs: 100, throwAtStep: 1, throwTimes: 1 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 2, stepMs: 100, throwAtStep: 1, throwTimes: 1 }, { outcome: "succeeded", reasonCode: null }],
    ];
    const firstIds = await Promise.all(first.map(([input]) => rt.createRun(input)));
    await rt.waitForRun(firstIds[0]!, "running", (r) => r.status === "running", 5 * MIN);

    // Created while the first batch holds the queue: their messages are still in the local queue at the kill.
    const waiting: [Record<string, number>, Expected][] = [
      [{ steps: 1, stepMs: 0 }, { outcome: "succeeded", reasonCode: null }],
      [{ steps: 2, stepMs: 50, partialAtStep: 1 }, { outcome: "partially_succeeded", reasonCode: null }],
    ];
    const waitingIds = await Promise.all(waiting.map(([input]) => rt.createRun(input)));

    await rt.kill();
    await rt.restart();

    const ids = [...firstIds, ...waitingIds];
    const expected = [...first, ...waiting].map(([, e]) => e);
    const runs: ApiRun[] = [];
    for (const id of ids) runs.push(await rt.waitTerminal(id, 8 * MIN));
    const trails = await rt.auditTrails(ids);

    // One kill: each run can have lost at most the one attempt it was running then.
    runs.forEach((run, i) => expectVerdictFromEvidence(run, trails.get(run.id)!, expected[i]!, 1));
    // The kill caught attempts mid-run (8 s of work, killed once the first was seen running)...
    expect(firstIds.slice(0, 5).some((id) => count(trails.get(id)!, "run.attempt_lost") === 1)).toBe(true);
    // ...and the dispatches the local queue lost were re-sent by their trackers before anything started them.
    for (const id of waitingIds) {
      const trail = trails.get(id)!;
      expect(eventId(trail, "run.redispatched") < eventId(trail, "run.attempt_started"), trail.map((e) => e.action).join(", ")).toBe(true);
    }
  }, 16 * MIN);
});
