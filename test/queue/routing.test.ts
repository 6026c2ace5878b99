/**
 * Runs travel on their type's queue (contract section 5: "runs are sent to
 * that queue"), and the Worker's queue entry leaves a queue that is not ours
 * alone.
 *
 * The second queue exists only in this file: a deployment like the generated
 * one plus a `reports` queue (producer REPORTS_QUEUE, max_retries 4,
 * dead-letter queue `reports-dlq`) and a policy map with `test.report` on it,
 * passed to the routing functions — no production code knows about them.
 * (vi.mock does not apply inside the Workers pool, so the registry and the
 * generated module are not swapped.)
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import worker from "../../src/index";
import { DEPLOYMENT } from "../../src/generated/deployment";
import type { DeploymentSettings, LifecyclePolicy } from "../../src/lifecycle";
import { policyFor, registeredPolicies } from "../../src/operations";
import { handleQueue } from "../../src/queue/handler";
import { producerFor, queueRole, UnknownQueueError } from "../../src/queue/routing";
import { capturingConsole } from "../support/logs";

const WITH_REPORTS: DeploymentSettings = {
  ...DEPLOYMENT,
  queueConsumers: [
    ...DEPLOYMENT.queueConsumers,
    { queue: "reports", maxRetries: 4, retryDelaySeconds: null, maxBatchSize: 1, maxBatchTimeoutSeconds: 2, deadLetterQueue: "reports-dlq" },
    { queue: "reports-dlq", maxRetries: 3, retryDelaySeconds: null, maxBatchSize: 10, maxBatchTimeoutSeconds: 2, deadLetterQueue: null },
  ],
  queueProducers: [...DEPLOYMENT.queueProducers, { queue: "reports", binding: "REPORTS_QUEUE" }],
};

const POLICIES: Record<string, LifecyclePolicy> = {
  ...registeredPolicies(),
  "test.report": { ...policyFor("demo.work"), queue: "reports" },
};

/** A queue binding that records what is sent to it. */
function recordingQueue(): { queue: Queue; sent: unknown[] } {
  const sent: unknown[] = [];
  const queue: Queue = {
    async send(body) {
      sent.push(body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    async sendBatch(messages) {
      for (const m of messages) sent.push(m.body);
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    async metrics() {
      return { backlogCount: 0, backlogBytes: 0 };
    },
  };
  return { queue, sent };
}

describe("producerFor", () => {
  it("gives the binding wrangler.toml declares for each queue", () => {
    const operations = recordingQueue();
    const reports = recordingQueue();
    const on = { ...env, OPERATIONS_QUEUE: operations.queue, REPORTS_QUEUE: reports.queue } as Env;
    expect(producerFor(on, "operations")).toBe(operations.queue);
    expect(producerFor(on, "reports", WITH_REPORTS)).toBe(reports.queue);
    expect(producerFor(on, "operations", WITH_REPORTS)).toBe(operations.queue);
  });

  it("a type registered on a second queue is sent to that queue's producer, not to operations", async () => {
    const operations = recordingQueue();
    const reports = recordingQueue();
    const on = { ...env, OPERATIONS_QUEUE: operations.queue, REPORTS_QUEUE: reports.queue } as Env;
    const message = { v: 1, runId: "run_01J0000000000000000000000R", workspaceId: "ws_r", type: "test.report" };

    await producerFor(on, POLICIES["test.report"]!.queue, WITH_REPORTS).send(message, { contentType: "json" });

    expect(reports.sent).toEqual([message]);
    expect(operations.sent).toEqual([]);
  });

  it("throws UnknownQueueError naming a queue this Worker has no producer for", () => {
    let thrown: unknown;
    try {
      producerFor(env, "reports");
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(UnknownQueueError);
    expect((thrown as UnknownQueueError).queue).toBe("reports");
    expect((thrown as Error).message).toBe(
      'No producer for queue "reports" in this Worker: wrangler.toml declares producers for "operations", "operations-dlq", "webhooks"',
    );
  });

  it("throws UnknownQueueError when the binding wrangler.toml names is missing from env", () => {
    // WITH_REPORTS names REPORTS_QUEUE; the test runtime's env (from the real wrangler.toml) has no such binding.
    expect(() => producerFor(env, "reports", WITH_REPORTS)).toThrow(
      'No producer for queue "reports" in this Worker: its binding REPORTS_QUEUE is not a queue in env',
    );
  });
});

describe("queueRole", () => {
  it("the queues of the deployed Worker: operations carries demo.work, operations-dlq is its dead-letter queue", () => {
    expect(queueRole("operations")).toBe("operations");
    expect(queueRole("operations-dlq")).toBe("dead_letter");
    expect(queueRole("emails")).toBe("foreign");
  });

  it("a second queue that carries a type is operations, its dead-letter queue dead_letter", () => {
    expect(queueRole("reports", POLICIES, WITH_REPORTS)).toBe("operations");
    expect(queueRole("reports-dlq", POLICIES, WITH_REPORTS)).toBe("dead_letter");
    expect(queueRole("emails", POLICIES, WITH_REPORTS)).toBe("foreign");
  });

  it("a queue no registered type names is foreign, even with a consumer and a dead-letter queue", () => {
    expect(queueRole("reports", registeredPolicies(), WITH_REPORTS)).toBe("foreign");
    expect(queueRole("reports-dlq", registeredPolicies(), WITH_REPORTS)).toBe("foreign");
  });
});

describe("the queue entry", () => {
  async function malformedEventsAbout(messageId: string): Promise<number> {
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_events WHERE subject_id = ?").bind(messageId).first<{ n: number }>();
    return row?.n ?? -1;
  }

  it("handleQueue returns false for a foreign batch and touches none of its messages", async () => {
    const batch = createMessageBatch("emails", [{ id: "m-foreign-1", timestamp: Date.now(), attempts: 1, body: { to: "a@b.test" } }]);
    const ctx = createExecutionContext();
    expect(await handleQueue(batch, env, ctx)).toBe(false);
    const result = await getQueueResult(batch, ctx);
    expect(result).toMatchObject({ explicitAcks: [], retryMessages: [], ackAll: false, retryBatch: { retry: false } });
    expect(await malformedEventsAbout("m-foreign-1")).toBe(0);
  });

  it("the default export retries a foreign batch with a log line, never acks it or records it as malformed", async () => {
    const batch = createMessageBatch<unknown>("emails", [
      { id: "m-foreign-2", timestamp: Date.now(), attempts: 1, body: { to: "a@b.test" } },
      { id: "m-foreign-3", timestamp: Date.now(), attempts: 1, body: "not a run" },
    ]);
    const ctx = createExecutionContext();
    const logged = await capturingConsole("error", () => worker.queue(batch, env, ctx));
    const result = await getQueueResult(batch, ctx);
    expect(result).toMatchObject({ explicitAcks: [], ackAll: false, retryBatch: { retry: true } });
    expect(logged.json).toEqual([expect.objectContaining({ event: "queue.foreign_batch", queue: "emails", messages: 2 })]);
    expect(await malformedEventsAbout("m-foreign-2")).toBe(0);
    expect(await malformedEventsAbout("m-foreign-3")).toBe(0);
  });

  it("a malformed message on a queue of ours is still acked and recorded", async () => {
    const batch = createMessageBatch("operations", [{ id: "m-ops-bad", timestamp: Date.now(), attempts: 1, body: "not a run" }]);
    const ctx = createExecutionContext();
    await capturingConsole("error", () => worker.queue(batch, env, ctx));
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["m-ops-bad"]);
    expect(await malformedEventsAbout("m-ops-bad")).toBe(1);
  });
});
