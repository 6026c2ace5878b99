/**
 * Helpers for the execution-path tests (test/queue, test/tracker) on the
 * Workers runtime: real D1, real RunTracker Durable Objects and their alarms,
 * queue batches built with `createMessageBatch`.
 *
 * Two rules keep these tests deterministic:
 *
 * - **Messages are delivered by hand.** The tracker sends every dispatch
 *   itself (contract v2 section 4). In this test project its producer binding
 *   points at a queue nobody consumes (vitest.config.ts), so nothing is
 *   delivered behind a test's back; a test reads the dispatch the tracker holds
 *   (`currentMessage`) and delivers it with `deliver`, choosing the delivery
 *   count. Real batches, real delays and redeliveries are tested where they
 *   happen: `wrangler dev` driven from the node project (test/node/batches).
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
  type AttemptReport,
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

/** A queue binding that records what is sent instead of delivering it. */
export function capturingQueue(): { queue: Queue; sent: { body: unknown; delaySeconds: number | undefined }[] } {
  const sent: { body: unknown; delaySeconds: number | undefined }[] = [];
  const queue: Queue = {
    async send(body, options) {
      sent.push({ body, delaySeconds: options?.delaySeconds });
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    async sendBatch(messages) {
      for (const m of messages) sent.push({ body: m.body, delaySeconds: m.delaySeconds });
      return { metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } } };
    },
    async metrics() {
      return { backlogCount: 0, backlogBytes: 0 };
    },
  };
  return { queue, sent };
}

/** A queue binding that refuses every send (the queue is down). */
export function brokenQueue(): Queue {
  const fail = async (): Promise<never> => {
    throw new Error("injected: queue unavailable");
  };
  return { send: fail, sendBatch: fail, metrics: fail };
}

/**
 * Replace the bindings the run's tracker sees (its `env`), e.g. a capturing or
 * broken queue, or a failing D1: the boundary is wrapped, not the code. Holds
 * until the object is evicted (`ageTracker` and `writeTrackerState` evict it).
 */
export async function patchTrackerEnv(runId: string, patch: (env: Env) => Env): Promise<void> {
  await runInDurableObject(tracker(runId), (instance: RunTracker) => {
    instance["env"] = patch(instance["env"]);
  });
}

export interface CreatedRun {
  run: RunRecord;
  /** The message the producer sent (what the queue would deliver). */
  message: OperationMessage;
}

/**
 * Accept a run through the producer (D1 row, tracker holding dispatch 1 and
 * having sent it to the unconsumed test queue): nothing is delivered until
 * the test does it.
 */
export async function createRun(workspaceId: string, input: unknown, type = "demo.work"): Promise<CreatedRun> {
  const { answer, tracked } = await enqueueRun(env, service(), { workspaceId, type, input, initiator: "user:test" });
  if (!answer.ok || !answer.created) throw new Error(`enqueueRun did not create a run: ${JSON.stringify(answer)}`);
  expect(tracked).toBe(true);
  expect(await trackerState(answer.run.id)).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1, claimed: false } });
  return { run: answer.run, message: operationMessageFor(answer.run, 1) };
}

/** The message of the tracker's current dispatch (what the queue holds for the run now). */
export async function currentMessage(runId: string): Promise<OperationMessage> {
  const s = await trackerState(runId);
  if (!s) throw new Error(`tracker of ${runId} holds no state`);
  return operationMessageFor({ id: s.runId, workspaceId: s.workspaceId, type: s.type }, s.dispatch.n);
}

export interface Delivery {
  body: unknown;
  /** The queue's delivery count: 1 on first delivery (not the attempt number: the tracker allocates that). */
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
 * heartbeat, last flush, the dispatch's due and send times, completed at, a cancel's request) moves `ms` into the past.
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
      dispatch: { ...s.dispatch, dueAt: s.dispatch.dueAt - ms, sentAt: shift(s.dispatch.sentAt, ms) },
      pending: s.pending ? { ...s.pending, storedAt: s.pending.storedAt - ms } : null,
      retryAt: shift(s.retryAt, ms),
      completedAt: shift(s.completedAt, ms),
      cancel: s.cancel ? { ...s.cancel, requestedAt: s.cancel.requestedAt - ms } : (s.cancel ?? null),
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
  | { method: "claim"; dispatch: number | null; answer: ClaimAnswer }
  | { method: "heartbeat"; attempt: number; answer: HeartbeatReply }
  | { method: "report"; report: AttemptReport; answer: ReportAnswer }
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
        async claim(req: { runId: string; dispatch: number | null }) {
          const answer: ClaimAnswer = await stub.claim(req);
          record({ method: "claim", dispatch: req.dispatch, answer });
          return answer;
        },
        async heartbeat(req: Parameters<RunTracker["heartbeat"]>[0]) {
          const answer: HeartbeatReply = await stub.heartbeat(req);
          record({ method: "heartbeat", attempt: req.attempt, answer });
          return answer;
        },
        async report(req: AttemptReport) {
          const answer: ReportAnswer = await stub.report(req);
          record({ method: "report", report: req, answer });
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

/** Where an injected D1 fault strikes: before D1 sees the write, or after it committed with the answer lost. */
export type D1FaultMode = "before-commit" | "after-commit";

/**
 * A D1 binding that fails the statements whose SQL matches `match`, `times`
 * times (then behaves): `before-commit` throws without executing;
 * `after-commit` executes (and commits), then throws, as when the answer is
 * lost on the way back. A batch fails if any of its statements matches.
 * `gate`, when given, holds each matching statement until it resolves (to
 * interleave calls deterministically) instead of failing it.
 */
export function faultyD1(
  match: (sql: string) => boolean,
  opts: { mode?: D1FaultMode; times?: number; gate?: Promise<void> } = {},
): { db: D1Database; struck: () => number } {
  const real = env.DB;
  let left = opts.times ?? 1;
  let struck = 0;
  const sqlOf = new WeakMap<object, string>();
  const unwrap = new WeakMap<object, D1PreparedStatement>();
  const strike = async <T>(exec: () => Promise<T>): Promise<T> => {
    if (opts.gate) {
      struck++;
      await opts.gate;
      return exec();
    }
    if (left <= 0) return exec();
    left--;
    struck++;
    if (opts.mode === "after-commit") {
      await exec();
      throw new Error("injected: D1 answer lost after commit");
    }
    throw new Error("injected: D1 unavailable before commit");
  };
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrap(target.bind(...values), sql);
        if ((prop === "run" || prop === "all" || prop === "first" || prop === "raw") && match(sql)) {
          return (...args: unknown[]) => strike(() => (Reflect.get(target, prop, target) as (...a: unknown[]) => Promise<unknown>).apply(target, args));
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    sqlOf.set(proxy, sql);
    unwrap.set(proxy, stmt);
    return proxy;
  };
  const db = new Proxy(real, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === "batch") {
        return <T>(statements: D1PreparedStatement[]) => {
          const inner = statements.map((s) => unwrap.get(s) ?? s);
          const exec = () => target.batch<T>(inner);
          return statements.some((s) => match(sqlOf.get(s) ?? "")) ? strike(exec) : exec();
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { db, struck: () => struck };
}
