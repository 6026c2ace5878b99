/**
 * Counting what the system asks of the platform, for the cost figures.
 *
 * The bench entry hands the production code an env whose bindings count:
 * - DB: production's own `meteredDb` (rows read/written from D1's `meta`),
 *   behind the soak's D1 faults when BENCH_D1_FAULT_RATE is set (d1-faults.ts);
 * - RUN_TRACKER: every RPC call made on a tracker stub (one Durable Object
 *   request each); alarms are counted in the bench RunTracker subclass;
 * - queues: messages sent; deliveries and retries are counted by the entry's
 *   queue handler.
 * The counters live in module scope: in `wrangler dev` the Worker and its
 * Durable Objects share one isolate (`/__bench/counters` proves it by showing
 * the tracker's D1 writes next to the Worker's).
 */
import { emptyCost, meteredDb, type D1Cost } from "../../src/runs/metered-db";
import { faultRate, faultyDb, type D1FaultCounts } from "./d1-faults";

export interface Counters {
  d1: D1Cost;
  /** Writes failed on purpose (BENCH_D1_FAULT_RATE), before and after they committed. */
  d1Faults: D1FaultCounts;
  /** RPC calls on tracker stubs, by method. */
  doRpc: Record<string, number>;
  /**
   * The trackers' own Durable Object storage writes, by call: `put` (keys
   * written: one row each in the SQLite-backed object's KV table), `setAlarm`,
   * `delete` and `deleteAll`.
   */
  doStorage: Record<string, number>;
  /** Tracker alarm invocations (and how many the bench switch suppressed). */
  doAlarms: number;
  doAlarmsSuppressed: number;
  /** Messages written to each queue. */
  queueSent: Record<string, number>;
  /** Messages delivered to a consumer, by queue (each delivery is one read). */
  queueDelivered: Record<string, number>;
  /** Deliveries the consumer asked to retry (the rest are acknowledged: one delete each). */
  queueRetried: Record<string, number>;
  since: number;
}

export const counters: Counters = {
  d1: emptyCost(),
  d1Faults: { beforeCommit: 0, afterCommit: 0 },
  doRpc: {},
  doStorage: {},
  doAlarms: 0,
  doAlarmsSuppressed: 0,
  queueSent: {},
  queueDelivered: {},
  queueRetried: {},
  since: Date.now(),
};

/** Zero every counter in place (wrapped bindings keep their reference to `counters.d1`). */
export function resetCounters(): void {
  counters.d1.rowsRead = 0;
  counters.d1.rowsWritten = 0;
  counters.d1.roundTrips = 0;
  counters.d1Faults.beforeCommit = 0;
  counters.d1Faults.afterCommit = 0;
  counters.doRpc = {};
  counters.doStorage = {};
  counters.doAlarms = 0;
  counters.doAlarmsSuppressed = 0;
  counters.queueSent = {};
  counters.queueDelivered = {};
  counters.queueRetried = {};
  counters.since = Date.now();
}

export function bump(map: Record<string, number>, key: string, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

function countingQueue(queue: Queue, name: string): Queue {
  return new Proxy(queue, {
    get(target, prop) {
      if (prop === "send") {
        return (body: unknown, options?: QueueSendOptions) => {
          bump(counters.queueSent, name);
          return target.send(body, options);
        };
      }
      if (prop === "sendBatch") {
        return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          bump(counters.queueSent, name, list.length);
          return target.sendBatch(list, options);
        };
      }
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** The storage writes a tracker makes, counted by call (reads pass through uncounted). */
function countingStorage(storage: DurableObjectStorage): DurableObjectStorage {
  return new Proxy(storage, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "put") {
        return (keyOrEntries: string | Record<string, unknown>, ...rest: unknown[]) => {
          bump(counters.doStorage, "put", typeof keyOrEntries === "string" ? 1 : Object.keys(keyOrEntries).length);
          return (value as (...a: unknown[]) => unknown).call(target, keyOrEntries, ...rest);
        };
      }
      if (prop === "setAlarm" || prop === "delete" || prop === "deleteAll" || prop === "deleteAlarm") {
        return (...args: unknown[]) => {
          bump(counters.doStorage, prop);
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
}

/** `ctx` whose storage counts its writes (the bench RunTracker hands it to production's). */
export function countingState(ctx: DurableObjectState): DurableObjectState {
  const storage = countingStorage(ctx.storage);
  return new Proxy(ctx, {
    get(target, prop) {
      if (prop === "storage") return storage;
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

function countingStub<T extends object>(stub: T): T {
  return new Proxy(stub, {
    get(target, prop) {
      // A stub is not a promise; never let `await` treat it as one.
      if (prop === "then") return undefined;
      const value: unknown = Reflect.get(target, prop);
      if (typeof prop !== "string" || typeof value !== "function") return value;
      return (...args: unknown[]) => {
        bump(counters.doRpc, prop);
        // Called as a method of the stub: anything else (`.apply`, `.call`) would
        // itself be sent as an RPC call.
        return (target as Record<string, (...a: unknown[]) => unknown>)[prop]!(...args);
      };
    },
  });
}

function countingNamespace<T extends object>(ns: T): T {
  return new Proxy(ns, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "get" || prop === "getByName") {
        return (...args: unknown[]) => countingStub((value as (...a: unknown[]) => object).apply(target, args));
      }
      return value.bind(target);
    },
  });
}

/** The bench's own bindings, on top of production's Env. */
export interface BenchEnv extends Env {
  BARE_QUEUE: Queue;
  /** "off": the trackers' alarms do nothing (the sweep-path detection figure). */
  BENCH_TRACKER_ALARM?: string;
  /** Share (0–1) of production's D1 writes that fail on purpose (the soak's D1 faults); unset: none. */
  BENCH_D1_FAULT_RATE?: string;
}

/** `env` with counting bindings; everything else passes through. */
export function instrumentEnv<E extends BenchEnv>(env: E): E {
  return {
    ...env,
    DB: faultyDb(meteredDb(env.DB, counters.d1).db, faultRate(env.BENCH_D1_FAULT_RATE), counters.d1Faults),
    RUN_TRACKER: countingNamespace(env.RUN_TRACKER),
    OPERATIONS_QUEUE: countingQueue(env.OPERATIONS_QUEUE, "operations"),
    OPERATIONS_DLQ: countingQueue(env.OPERATIONS_DLQ, "operations-dlq"),
    BARE_QUEUE: countingQueue(env.BARE_QUEUE, "bench-bare"),
  };
}
