/**
 * demo.work's dieAtStep: the attempt stops heartbeating mid-run (as if its
 * isolate died) while its code never returns. The tracker declares it lost;
 * when the attempt's own timeout finally ends it, its report is fenced and
 * recorded as a late result, and the message goes back to the queue for the
 * next attempt.
 */
import { expect, it } from "vitest";
import { makeWorkspace } from "../support/fixtures";
import { OPERATIONS, actionsOf, ageTracker, createRun, deliver, getRun, runAlarm, tracker, trackerState } from "../support/execution";

it("a dead attempt is declared lost by its tracker; its late report is discarded and the message redelivered", async () => {
  const ws = await makeWorkspace("die");
  const { run, message } = await createRun(ws, { steps: 4, stepMs: 20, dieAtStep: 2, timeoutMs: 2_500 });
  const delivery = deliver(OPERATIONS, [{ body: message, attempts: 1 }]);

  // Wait (bounded) until the attempt is running and its heartbeats have stopped at step 2.
  let heartbeatAt: number | null = null;
  for (let i = 0; i < 50 && heartbeatAt === null; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const s = await trackerState(run.id);
    if (s?.status === "running") heartbeatAt = s.lastHeartbeatAt;
  }
  expect(heartbeatAt).not.toBeNull();
  await new Promise((r) => setTimeout(r, 1_300));
  const silent = await trackerState(run.id);
  // No heartbeat for over a second although the interval is 1 s: the attempt is "dead".
  expect(Date.now() - (silent?.lastHeartbeatAt ?? 0)).toBeGreaterThan(1_000);

  await ageTracker(run.id, 10_000);
  await runAlarm(run.id);
  expect((await getRun(run.id)).status).toBe("queued");

  const { retries } = await delivery;
  expect(retries).toHaveLength(1); // the message goes back for attempt 2
  const after = await getRun(run.id);
  expect(after).toMatchObject({ status: "queued", attempt: 1, outcome: "pending" });
  expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_lost", "run.late_result_discarded"]);
  expect((await tracker(run.id).status()).known).toBe(true);
});
