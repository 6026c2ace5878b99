/**
 * Helpers for the execution-path tests (test/queue, test/tracker) on the
 * Workers runtime: real D1, real RunTracker Durable Objects and their alarms,
 * queue batches built with `createMessageBatch`.
 *
 * Two rules keep these tests deterministic:
 *
 * - **Messages are delivered by hand.** `enqueueRun` with the real env also
 *   sends to the real queue, whose consumer runs in this same runtime and would
 *   race a test's own batches. `createRun` therefore enqueues through an env
 *   whose OPERATIONS_QUEUE only captures what is sent; the test delivers it
 *   with `deliver`, choosing the delivery count (`attempts`). Only
 *   queue.e2e.test.ts uses the real queue.
 * - **Time passes by rewriting the tracker, not by waiting.** The tracker reads
 *   `Date.now()`. `ageTracker(runId, ms)` moves every timestamp of its stored
 *   state (storage key "state", type TrackerState) `ms` into the past, then
 *   evicts the object so its in-memory copy of the state is dropped and the next
 *   call reloads the aged one from storage. The alarm that was armed stays where
 *   it was (in the future); `runAlarm(runId)` runs it now, as the platform would
 *   once the deadline passed.
 *
 * Durable Object alarms are not reset between tests: every test gets its own
 * workspace and runs (run ids are unique), so one test's alarm never touches
 * another test's run. Armed alarms also fire for real when their time comes
 * (a running attempt's within heartbeatTimeoutMs), so a test leaves no run
 * running: it completes or reconciles it before it ends.
 *
 * `spyingEnv` wraps RUN_TRACKER to record what the consumer asked the tracker
 * and what it was told (which delivery claimed, what a heartbeat heard).
 */
import { capturingConsole, type Captured } from "./logs";
import { createExecutionContext, createMessageBatch, evictDurableObject, getQueueResult, runDurableObjectAlarm, runInDurableObject, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import worker from "../../src/index";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { enqueueRun } from "../../src/queue/producer";
import { operationMessageFor, type OperationMessage } from "../../src/queue/messages";
import { RunService, type RunRecord } from "../../src/runs";
import {
  trackerFor,
  type ClaimAnswer,
  type HeartbeatReply,
  type ReportAnswer,
  type RunTracker,
  type TrackerState,
  type TrackerStatus,
} from "../../src/tracker";
import { eventsOf } from "./runs";

export const OPERATIONS = "operations";
export const DLQ = "operations-dlq";
export { DEMO_POLICY } from "./demo";
const STATE_KEY = "state";

export function service(): RunService {
  return new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS });
}

/** An env whose operations queue records what is sent instead of delivering it. */
export function capturingEnv(): { env: Env; sent: unknown[] } {
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
  return { env: { ...env, OPERATIONS_QUEUE: queue }, sent };
}

/** An env whose operations queue refuses every send (the message is lost at the producer). */
export function brokenQueueEnv(): Env {
  const fail = async (): Promise<never> => {
    throw new Error("injected: queue unavailable");
  };
  return { ...env, OPERATIONS_QUEUE: { send: fail, sendBatch: fail, metrics: fail } };
}

export interface CreatedRun {
  run: RunRecord;
  /** The message the producer sent (what the queue would deliver). */
  message: OperationMessage;
}

/**
 * Accept a run through the producer (D1 row, tracker armed, message sent)
 * with the send captured: nothing is delivered until the test does it.
 */
export async function createRun(workspaceId: string, input: unknown, type = "demo.work"): Promise<CreatedRun> {
  const q = capturingEnv();
  const { answer, sent } = await enqueueRun(q.env, service(), { workspaceId, type, input, initiator: "user:test" });
  if (!answer.ok || !answer.created) throw new Error(`enqueueRun did not create a run: ${JSON.stringify(answer)}`);
  expect(sent).toBe(true);
  expect(q.sent).toEqual([operationMessageFor(answer.run)]);
  return { run: answer.run, message: operationMessageFor(answer.run) };
}

export interface Delivery {
  body: unknown;
  /** The delivery count: 1 on first delivery; the consumer uses it as the attempt number. */
  attempts: number;
  id?: string;
}

export interface Delivered {
  result: QueueResult;
  ids: string[];
  /**
   * Every retry() call with the delay it asked for. getQueueResult reports
   * which messages were retried but drops `delaySeconds` (the plugin's
   * QueueMessage ignores its options), so the delay is recorded here.
   */
  retries: { msgId: string; delaySeconds: number | undefined }[];
}

/** Deliver one batch to the Worker's queue entry (routed by queue name, as the platform does). */
export async function deliver(queue: string, deliveries: Delivery[], on: Env = env): Promise<Delivered> {
  const ids = deliveries.map((d) => d.id ?? `msg_${crypto.randomUUID()}`);
  const batch = createMessageBatch(
    queue,
    deliveries.map((d, i) => ({ id: ids[i]!, timestamp: Date.now(), attempts: d.attempts, body: d.body })),
  );
  const retries: Delivered["retries"] = [];
  for (const m of batch.messages) {
    const retry = m.retry.bind(m);
    m.retry = (options?: QueueRetryOptions) => {
      retries.push({ msgId: m.id, delaySeconds: options?.delaySeconds });
      retry(options);
    };
  }
  const ctx = createExecutionContext();
  await worker.queue(batch, on, ctx);
  const result = await getQueueResult(batch, ctx);
  expect(result.retryMessages.map((r) => r.msgId)).toEqual(retries.map((r) => r.msgId));
  return { result, ids, retries };
}

/** The one message of a single-message delivery was acked, not retried. */
export function expectAcked(d: Delivered): void {
  expect(d.result.explicitAcks).toEqual(d.ids);
  expect(d.result.retryMessages).toEqual([]);
  expect(d.result.retryBatch.retry).toBe(false);
}

export async function getRun(runId: string): Promise<RunRecord> {
  const run = await service().getById(runId);
  if (!run) throw new Error(`run ${runId} not found`);
  return run;
}

export async function actionsOf(runId: string): Promise<string[]> {
  return (await eventsOf(runId)).map((e) => e.action);
}

export function tracker(runId: string): DurableObjectStub<RunTracker> {
  return trackerFor(env, runId);
}

/** The tracker's stored state (null when it holds none). */
export async function trackerState(runId: string): Promise<TrackerState | null> {
  return runInDurableObject(tracker(runId), async (_instance: RunTracker, state) => (await state.storage.get<TrackerState>(STATE_KEY)) ?? null);
}

/** When the tracker's alarm is armed (null when none). */
export async function alarmAt(runId: string): Promise<number | null> {
  return runInDurableObject(tracker(runId), (_instance: RunTracker, state) => state.storage.getAlarm());
}

/** Everything in the tracker's storage (to prove cleanup left nothing). */
export async function trackerStorageSize(runId: string): Promise<number> {
  return runInDurableObject(tracker(runId), async (_instance: RunTracker, state) => (await state.storage.list()).size);
}

const shift = (t: number | null, ms: number) => (t === null ? null : t - ms);

/**
 * Simulate `ms` of silence: every timestamp the tracker holds (last
 * heartbeat, last flush, queued since, completed at) moves `ms` into the past.
 * The object is then evicted so its cached in-memory state is reloaded from
 * storage. The armed alarm is left alone; run it with `runAlarm`.
 */
export async function ageTracker(runId: string, ms: number): Promise<TrackerState> {
  const stub = tracker(runId);
  const aged = await runInDurableObject(stub, async (_instance: RunTracker, state) => {
    const s = await state.storage.get<TrackerState>(STATE_KEY);
    if (!s) throw new Error(`tracker of ${runId} holds no state to age`);
    const next: TrackerState = {
      ...s,
      lastHeartbeatAt: shift(s.lastHeartbeatAt, ms),
      lastFlushedAt: shift(s.lastFlushedAt, ms),
      queuedSince: s.queuedSince - ms,
      completedAt: shift(s.completedAt, ms),
    };
    await state.storage.put(STATE_KEY, next);
    return next;
  });
  await evictDurableObject(stub);
  return aged;
}

/** Overwrite the tracker's stored state (e.g. replay a pre-alarm snapshot) and drop its cache. */
export async function writeTrackerState(runId: string, s: TrackerState): Promise<void> {
  const stub = tracker(runId);
  await runInDurableObject(stub, (_instance: RunTracker, state) => state.storage.put(STATE_KEY, s));
  await evictDurableObject(stub);
}

/** Run the tracker's armed alarm now; fails the test if none was armed. */
export async function runAlarm(runId: string): Promise<void> {
  expect(await runDurableObjectAlarm(tracker(runId)), `an alarm is armed for ${runId}`).toBe(true);
}

export type TrackerCall =
  | { method: "claim"; attempt: number; answer: ClaimAnswer }
  | { method: "heartbeat"; attempt: number; answer: HeartbeatReply }
  | { method: "complete"; attempt: number; answer: ReportAnswer }
  | { method: "fail"; attempt: number; answer: ReportAnswer }
  | { method: "status"; answer: TrackerStatus };

/**
 * An env whose RUN_TRACKER forwards to the real trackers and records every
 * call the consumer makes with the answer it got, so a test can see which
 * delivery claimed, which was refused and what a heartbeat was told.
 * `onCall` runs after each answer (e.g. to act once a claim succeeded).
 */
export function spyingEnv(onCall: (call: TrackerCall) => void = () => {}): { env: Env; calls: TrackerCall[] } {
  const calls: TrackerCall[] = [];
  const record = (c: TrackerCall) => {
    calls.push(c);
    onCall(c);
  };
  const namespace = {
    getByName(name: string) {
      const stub = env.RUN_TRACKER.getByName(name);
      return {
        async claim(req: { runId: string; attempt: number }) {
          const answer: ClaimAnswer = await stub.claim(req);
          record({ method: "claim", attempt: req.attempt, answer });
          return answer;
        },
        async heartbeat(req: Parameters<RunTracker["heartbeat"]>[0]) {
          const answer: HeartbeatReply = await stub.heartbeat(req);
          record({ method: "heartbeat", attempt: req.attempt, answer });
          return answer;
        },
        async complete(req: Parameters<RunTracker["complete"]>[0]) {
          const answer: ReportAnswer = await stub.complete(req);
          record({ method: "complete", attempt: req.attempt, answer });
          return answer;
        },
        async fail(req: Parameters<RunTracker["fail"]>[0]) {
          const answer: ReportAnswer = await stub.fail(req);
          record({ method: "fail", attempt: req.attempt, answer });
          return answer;
        },
        async status() {
          const answer: TrackerStatus = await stub.status();
          record({ method: "status", answer });
          return answer;
        },
      };
    },
  };
  // Only the methods the consumer calls are forwarded; the cast is confined to this test double.
  return { env: { ...env, RUN_TRACKER: namespace as unknown as Env["RUN_TRACKER"] }, calls };
}

/** What the log writes at error level (console.error) while `fn` runs. */
export function capturingErrorLog<T>(fn: () => Promise<T>): Promise<Captured<T>> {
  return capturingConsole("error", fn);
}
