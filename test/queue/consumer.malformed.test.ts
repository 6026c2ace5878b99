/**
 * A message that does not parse would fail the same way on every delivery:
 * on both queues it is acked (never retried), logged as exactly one
 * structured line and recorded once in the system workspace's audit trail —
 * and it never stops the valid messages of its batch.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SYSTEM_WORKSPACE_ID } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { DLQ, OPERATIONS, actionsOf, capturingErrorLog, createRun, deliver, getRun } from "../support/execution";

const VALID = { v: 1, runId: "run_01J0000000000000000000000A", workspaceId: "ws_x", type: "demo.work" };

const MALFORMED: { name: string; body: unknown; issue: RegExp }[] = [
  { name: "a non-object body", body: "hello", issue: /^\(root\): / },
  { name: "a null body", body: null, issue: /^\(root\): / },
  { name: "a wrong version", body: { ...VALID, v: 3 }, issue: /^v: / },
  { name: "a bad run id", body: { ...VALID, runId: "run_123" }, issue: /^runId: not a run id$/ },
  { name: "an extra field", body: { ...VALID, input: { steps: 1 } }, issue: /^\(root\): .*input/ },
];

interface AuditRow {
  workspace_id: string;
  actor: string;
  action: string;
  subject_type: string;
  metadata: string;
}

async function eventsAbout(messageId: string): Promise<AuditRow[]> {
  const res = await env.DB.prepare("SELECT * FROM audit_events WHERE subject_id = ? ORDER BY id").bind(messageId).all<AuditRow>();
  return res.results;
}

const cases = [
  { queue: OPERATIONS, actor: "system:consumer" },
  { queue: DLQ, actor: "system:dead-letter" },
].flatMap(({ queue, actor }) => MALFORMED.map((m) => ({ ...m, queue, actor })));

describe("a malformed message", () => {
  it.each(cases)("on $queue, $name: acked, one log line, one audit event in ws_system", async ({ queue, actor, body, issue }) => {
    const id = `m-bad-${crypto.randomUUID().slice(0, 8)}`;
    const { value: d, json } = await capturingErrorLog(() => deliver(queue, [{ body, attempts: 1, id }]));

    expect(d.result.explicitAcks).toEqual([id]);
    expect(d.result.retryMessages).toEqual([]);

    const lines = json.filter((l) => l.messageId === id);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: "error", event: "queue.message_malformed", queue, attempts: 1 });
    const issues = lines[0]!.issues;
    expect(Array.isArray(issues) && issues.some((i) => typeof i === "string" && issue.test(i)), JSON.stringify(issues)).toBe(true);

    const events = await eventsAbout(id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      workspace_id: SYSTEM_WORKSPACE_ID,
      actor,
      action: "queue.message_malformed",
      subject_type: "queue_message",
    });
    expect(JSON.parse(events[0]!.metadata)).toMatchObject({ queue, messageId: id, attempts: 1, issues });
  });

  it("on operations, does not stop the valid message beside it in the batch", async () => {
    const ws = await makeWorkspace("malformed");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });

    const { value: d, json } = await capturingErrorLog(() =>
      deliver(OPERATIONS, [
        { body: { ...message, v: 3 }, attempts: 1, id: "m-mixed-bad" },
        { body: message, attempts: 1, id: "m-mixed-good" },
      ]),
    );
    expect(json.filter((l) => l.event === "queue.message_malformed").map((l) => l.messageId)).toEqual(["m-mixed-bad"]);

    expect([...d.result.explicitAcks].sort()).toEqual(["m-mixed-bad", "m-mixed-good"]);
    expect(d.result.retryMessages).toEqual([]);
    expect(await eventsAbout("m-mixed-bad")).toHaveLength(1);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });

  it("on operations-dlq, does not stop the valid dead letter beside it in the batch", async () => {
    const ws = await makeWorkspace("malformed");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });

    const { value: d, json } = await capturingErrorLog(() =>
      deliver(DLQ, [
        { body: "not a message", attempts: 1, id: "m-dlq-mixed-bad" },
        { body: message, attempts: 1, id: "m-dlq-mixed-good" },
      ]),
    );
    expect(json.filter((l) => l.event === "queue.message_malformed").map((l) => l.messageId)).toEqual(["m-dlq-mixed-bad"]);

    expect([...d.result.explicitAcks].sort()).toEqual(["m-dlq-mixed-bad", "m-dlq-mixed-good"]);
    expect(await eventsAbout("m-dlq-mixed-bad")).toHaveLength(1);
    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "failed",
      reasonCode: "queue.max_attempts_exceeded",
      reconciledBy: "dead_letter",
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.reconciled"]);
  });
});
