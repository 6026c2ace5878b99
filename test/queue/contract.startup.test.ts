/**
 * The consumer checks the timing contract before it touches a message
 * (contract section 5): on a violated contract it refuses the whole batch with
 * an error naming the rule, and no handler runs.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { DEFAULT_SETTINGS, TimingContractViolation, checkTimingContract } from "../../src/lifecycle";
import { DEPLOYMENT } from "../../src/generated/deployment";
import { registeredPolicies } from "../../src/operations";
import { handleOperationsBatch } from "../../src/queue/consumer";
import { makeWorkspace } from "../support/fixtures";
import { snapshot } from "../support/runs";
import { DEMO_POLICY, OPERATIONS, actionsOf, createRun, trackerState } from "../support/execution";

it("a contract violating T3 rejects the batch with TimingContractViolation naming T3; the run is untouched", async () => {
  const policies = registeredPolicies();
  // One attempt more than the queue delivers (max_retries + 1): T3 is broken.
  const broken = { ...policies, "demo.work": { ...DEMO_POLICY, maxAttempts: DEMO_POLICY.maxAttempts + 1 } };
  const report = checkTimingContract(broken, DEPLOYMENT, DEFAULT_SETTINGS);
  expect(report.ok).toBe(false);
  expect(report.violations.map((v) => v.rule)).toEqual(["T3"]);

  const ws = await makeWorkspace("contract");
  const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
  const before = await snapshot(run.id);
  const batch = createMessageBatch(OPERATIONS, [{ id: "m-contract", timestamp: Date.now(), attempts: 1, body: message }]);
  let contractChecks = 0;

  const refused = handleOperationsBatch(batch, env, {
    contract: () => {
      contractChecks++;
      return report;
    },
  });

  await expect(refused).rejects.toBeInstanceOf(TimingContractViolation);
  await expect(refused).rejects.toThrow(/T3 violated for demo\.work: maxAttempts \(4\) must be = max_retries \+ 1 of queue "operations" \(3\)/);
  expect(contractChecks).toBe(1);
  // Nothing settled: the thrown error makes the platform retry the whole batch.
  const settled = await getQueueResult(batch, createExecutionContext());
  expect(settled).toMatchObject({ explicitAcks: [], retryMessages: [], ackAll: false, retryBatch: { retry: false } });
  expect(await snapshot(run.id)).toEqual(before);
  expect(await actionsOf(run.id)).toEqual(["run.queued"]);
  expect(await trackerState(run.id)).toMatchObject({ status: "queued", attempt: 0 });
});

it("the contract in force (policies vs wrangler.toml) holds, so the same batch runs", async () => {
  const report = checkTimingContract(registeredPolicies(), DEPLOYMENT, DEFAULT_SETTINGS);
  expect(report.violations).toEqual([]);

  const ws = await makeWorkspace("contract");
  const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });
  const batch = createMessageBatch(OPERATIONS, [{ id: "m-contract-ok", timestamp: Date.now(), attempts: 1, body: message }]);

  await handleOperationsBatch(batch, env, { contract: () => report });

  expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
});
