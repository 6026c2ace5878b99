/**
 * The one test that goes through the real queue: producer → Queues →
 * the Worker's consumer, all inside the test runtime. Every other execution
 * test delivers its batches by hand; this one proves the wiring they stand for.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { enqueueRun } from "../../src/queue/producer";
import type { RunRecord } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { actionsOf, getRun, service, trackerState } from "../support/execution";

// max_batch_timeout is 2 s; the bound leaves room for a slow machine, not for a retry.
const DELIVERY_BOUND_MS = 15_000;

async function untilCompleted(runId: string): Promise<RunRecord> {
  const giveUpAt = Date.now() + DELIVERY_BOUND_MS;
  for (;;) {
    const run = await getRun(runId);
    if (run.status === "completed" || Date.now() > giveUpAt) return run;
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("a run enqueued on the real queue is delivered to the consumer and succeeds", { timeout: DELIVERY_BOUND_MS + 5_000 }, async () => {
  const ws = await makeWorkspace("e2e");
  const { answer, sent } = await enqueueRun(env, service(), {
    workspaceId: ws,
    type: "demo.work",
    input: { steps: 3, stepMs: 10 },
    initiator: "user:e2e",
  });
  if (!answer.ok) throw new Error("enqueueRun refused the run");
  expect(sent).toBe(true);
  const created = answer.run;
  expect(created.status).toBe("queued");

  const run = await untilCompleted(created.id);

  expect(run).toMatchObject({
    status: "completed",
    outcome: "succeeded",
    attempt: 1,
    reasonCode: null,
    reconciledBy: null,
    progress: { total: 3, processed: 3, succeeded: 3, failed: 0 },
  });
  expect(await actionsOf(created.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  expect(await trackerState(created.id)).toMatchObject({ status: "completed", attempt: 1 });
});
