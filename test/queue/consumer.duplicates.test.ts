/**
 * Queues deliver at least once: the same message can arrive twice. The run's
 * tracker decides which delivery runs the handler — a second claim of the same
 * dispatch is a duplicate and is acked without running.
 */
import { expect, it } from "vitest";
import { makeWorkspace } from "../support/fixtures";
import { snapshot } from "../support/runs";
import { OPERATIONS, actionsOf, createRun, deliver, expectAcked, getRun, spyingEnv } from "../support/execution";

it("two concurrent deliveries of one message run the handler once; the other is refused as duplicate and acked", async () => {
  const ws = await makeWorkspace("dup");
  const { run, message } = await createRun(ws, { steps: 4, stepMs: 50 });
  const spy = spyingEnv();

  const [a, b] = await Promise.all([
    deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-dup" }], spy.env),
    deliver(OPERATIONS, [{ body: message, attempts: 1, id: "m-dup" }], spy.env),
  ]);
  expectAcked(a);
  expectAcked(b);

  const claims = spy.calls.filter((c) => c.method === "claim");
  expect(claims).toHaveLength(2);
  expect(claims.map((c) => (c.answer.ok ? "ok" : c.answer.refusal)).sort()).toEqual(["duplicate", "ok"]);
  // Only the winner reported, and it reported a result.
  expect(spy.calls.filter((c) => c.method === "report").map((c) => (c.method === "report" ? c.report.kind : null))).toEqual(["result"]);

  expect(await getRun(run.id)).toMatchObject({
    status: "completed",
    outcome: "succeeded",
    attempt: 1,
    reasonCode: null,
    reconciledBy: null,
    progress: { total: 4, processed: 4, succeeded: 4, failed: 0 },
  });
  expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
});

it("a redelivery after the run completed is acked and changes nothing", async () => {
  const ws = await makeWorkspace("dup");
  const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
  expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
  const before = await snapshot(run.id);
  expect(before.row).toMatchObject({ status: "completed", outcome: "succeeded" });

  for (const attempts of [1, 2]) {
    const spy = spyingEnv();
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts }], spy.env));
    expect(spy.calls.map((c) => c.method)).toEqual(["claim"]);
    expect(spy.calls[0]).toMatchObject({ method: "claim", answer: { ok: false, refusal: "terminal" } });
  }

  expect(await snapshot(run.id)).toEqual(before);
});
