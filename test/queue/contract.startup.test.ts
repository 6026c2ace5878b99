/**
 * A violated timing contract refuses NEW work at acceptance, and only that
 * (contract v2 section 5): `POST /api/v1/runs` answers a 503 problem naming
 * the rule and both numbers and accepts nothing, while the consumer and the
 * sweep keep converging the runs already accepted — they take no contract at
 * all, so a violation can no longer dead-letter runs as "queue gave up" or
 * stop the sweep.
 *
 * The violation is a deployment one: the operations queue never redelivers
 * (max_retries 0), which breaks T3 for demo.work.
 */
import { trackerState } from "../support/execution";
import { createScheduledController } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { createApi } from "../../src/api/app";
import { DEPLOYMENT } from "../../src/generated/deployment";
import { checkTimingContract, DEFAULT_SETTINGS, type ContractReport, type DeploymentSettings } from "../../src/lifecycle";
import { registeredPolicies } from "../../src/operations";
import { handleScheduled } from "../../src/sweep/scheduled";
import { apiClient, DEMO_BODY, expectProblem, postInit, recordingQueue, request, runsInWorkspace } from "../support/api";
import { makeWorkspace } from "../support/fixtures";
import { OPERATIONS, actionsOf, createRun, deliver, expectAcked } from "../support/execution";
import { createRunning, makeOverdue, storedRow } from "../support/sweep";

const NEVER_REDELIVERS: DeploymentSettings = {
  ...DEPLOYMENT,
  queueConsumers: DEPLOYMENT.queueConsumers.map((c) => (c.queue === OPERATIONS ? { ...c, maxRetries: 0 } : c)),
};
const violated: ContractReport = checkTimingContract(registeredPolicies(), NEVER_REDELIVERS, DEFAULT_SETTINGS);
const holding: ContractReport = checkTimingContract(registeredPolicies(), DEPLOYMENT, DEFAULT_SETTINGS);

const T3_LINE = 'T3 violated for demo.work: max_retries of queue "operations" (0) must be ≥ one redelivery of a crashed invocation (1)';

/** POST /runs through the API app with `contract` in force and a queue that records what is sent. */
async function createWith(contract: ContractReport, token: string) {
  const queue = recordingQueue();
  const api = createApi({ contract: () => contract });
  // The API app is mounted at /api/v1 in the Worker; on its own it answers /runs.
  const res = await api.fetch(request("/runs", postInit(token, DEMO_BODY)), { ...env, OPERATIONS_QUEUE: queue.queue });
  return { res, sent: queue.sent };
}

describe("a violated contract refuses new runs at acceptance", () => {
  it("the contract used here is violated on T3 only, and the contract in force holds", () => {
    // Registry order: production's types, then the local build's.
    expect(violated.violations.map((v) => [v.rule, v.type])).toEqual([
      ["T3", "http.export"],
      ["T3", "demo.work"],
    ]);
    expect(holding.violations).toEqual([]);
  });

  it("POST /runs answers 503 timing-contract-violated naming the rule and both numbers; nothing is created or sent", async () => {
    const client = await apiClient("contract-refused");
    const { res, sent } = await createWith(violated, client.token);

    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe("https://oplife.dev/problems/timing-contract-violated");
    expect(problem.title).toBe("Timing contract violated");
    expect(problem.detail).toBe(`New demo.work runs are refused until the deployment's timing contract holds: ${T3_LINE}`);
    expect(problem.rules).toEqual(["T3"]);
    expect(problem.violations).toEqual([T3_LINE]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
    expect(sent).toEqual([]);
  });

  it("the same request with the contract holding is accepted (202) and its tracker sends dispatch 1", async () => {
    const client = await apiClient("contract-holds");
    const { res } = await createWith(holding, client.token);
    expect(res.status).toBe(202);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
    const { run } = (await res.json()) as { run: { id: string } };
    expect(await trackerState(run.id)).toMatchObject({ dispatch: { n: 1, sends: 1 } });
  });

  it("a violation of another type's rules does not refuse demo.work", async () => {
    const otherBroken = checkTimingContract(
      { ...registeredPolicies(), "other.op": { ...registeredPolicies()["demo.work"]!, heartbeatTimeoutMs: 1 } },
      DEPLOYMENT,
      DEFAULT_SETTINGS,
    );
    expect(otherBroken.violations.map((v) => [v.rule, v.type])).toEqual([["T2", "other.op"]]);
    const client = await apiClient("contract-other");
    const { res } = await createWith(otherBroken, client.token);
    expect(res.status).toBe(202);
  });
});

describe("runs accepted before keep converging", () => {
  it("the consumer runs an accepted run to completion", async () => {
    const ws = await makeWorkspace("contract-consumer");
    const { run, message } = await createRun(ws, { steps: 1, stepMs: 0 });

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("the cron sweep still reconciles an overdue run", async () => {
    const ws = await makeWorkspace("contract-sweep");
    const overdue = await createRunning(ws);
    await makeOverdue(overdue.id, 5_000);

    await handleScheduled(createScheduledController({ scheduledTime: Date.now(), cron: "* * * * *" }), env);

    expect(await storedRow(overdue.id)).toMatchObject({ status: "completed", reason_code: "lifecycle.stale_running", reconciled_by: "sweep" });
  });
});
