/**
 * Wrappers around the real D1 binding that make races and failures happen on
 * purpose: every property is forwarded to the binding, and only the calls a
 * test is about (batch(), prepare()) are changed.
 */
import { env } from "cloudflare:workers";

/**
 * How long a barrier waits for its last writer. Only a broken test waits
 * this long: it is generous so that a busy machine never trips it.
 */
const BARRIER_TIMEOUT_MS = 30_000;

/** Forward a property of a workerd binding, bound to it (its methods need their own `this`). */
function forward<T extends object>(target: T, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop, target);
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

/** A promise with its resolver, for ordering concurrent paths by hand. */
function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/**
 * A D1 whose first `writers` batch() calls wait for each other: every writer
 * has read and decided before any writes, so the compare-and-set alone picks
 * the winner. Later batches (a loser's second round) pass straight through.
 * `casChanges` is `meta.changes` of each batch's first statement (the
 * compare-and-set), in completion order. A writer that never arrives makes
 * the waiting ones throw after `timeoutMs` instead of hanging the test.
 */
export function writeBarrier(writers: number, timeoutMs = BARRIER_TIMEOUT_MS): { db: D1Database; casChanges: number[] } {
  const casChanges: number[] = [];
  let arrived = 0;
  const all = deferred();
  let failed: Error | null = null;
  const timer = setTimeout(() => {
    failed = new Error(`barrier: only ${arrived} of ${writers} writers reached batch()`);
    all.resolve();
  }, timeoutMs);
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop !== "batch") return forward(target, prop);
      return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
        if (arrived < writers) {
          arrived++;
          if (arrived === writers) {
            clearTimeout(timer);
            all.resolve();
          }
          await all.promise;
          if (failed) throw failed;
        }
        const results = await target.batch<T>(statements);
        casChanges.push(results[0]?.meta.changes ?? -1);
        return results;
      };
    },
  });
  return { db, casChanges };
}

/**
 * A D1 whose batch() calls (transition writes) are held until `release()`:
 * a writer that has read and decided, stopped just before its
 * compare-and-set. `arrived` settles when the first write is held.
 */
export function heldWrites(): { db: D1Database; arrived: Promise<void>; release: () => void; held: () => number } {
  let held = 0;
  const first = deferred();
  const gate = deferred();
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop !== "batch") return forward(target, prop);
      return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
        held++;
        first.resolve();
        await gate.promise;
        return target.batch<T>(statements);
      };
    },
  });
  return { db, arrived: first.promise, release: () => gate.resolve(), held: () => held };
}

/**
 * A D1 whose batch() (the transition write) throws for any batch containing
 * a statement bound to one of `ids`; reads and other runs pass through.
 */
export function failingWritesFor(ids: ReadonlySet<string>): { db: D1Database; failures: () => number } {
  let failures = 0;
  const poisoned = new WeakSet<D1PreparedStatement>();
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement =>
    new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") {
          return (...values: unknown[]) => {
            const bound = target.bind(...values);
            if (values.some((v) => typeof v === "string" && ids.has(v))) poisoned.add(bound);
            return bound;
          };
        }
        return forward(target, prop);
      },
    });
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql));
      if (prop === "batch") {
        return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
          if (statements.some((s) => poisoned.has(s))) {
            failures++;
            throw new Error("injected: D1 write failed");
          }
          return target.batch<T>(statements);
        };
      }
      return forward(target, prop);
    },
  });
  return { db, failures: () => failures };
}

/**
 * A D1 whose batch() fails. `before-d1`: it throws without reaching D1.
 * `mid-batch`: the real statements run, then an appended statement violates a
 * CHECK constraint, so D1 must roll the whole batch back.
 */
export function failingD1(mode: "before-d1" | "mid-batch"): { db: D1Database; attempts: () => number } {
  let attempts = 0;
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop !== "batch") return forward(target, prop);
      return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
        attempts++;
        if (mode === "before-d1") throw new Error("injected: D1 unavailable");
        const poison = target.prepare("UPDATE operation_runs SET status = 'not-a-status' WHERE 1 = 1");
        return target.batch<T>([...statements, poison]);
      };
    },
  });
  return { db, attempts: () => attempts };
}

/** The real D1 with `batch` failing, its sessions' too: auth lookups work, the page's own query breaks. */
export function d1WithFailingBatch(message: string, db: D1Database = env.DB): D1Database {
  const failing = async () => Promise.reject(new Error(message));
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "batch") return failing;
      if (prop === "withSession") {
        return (constraint?: string) => {
          const session = target.withSession(constraint);
          return { prepare: (q: string) => session.prepare(q), batch: failing, getBookmark: () => session.getBookmark() };
        };
      }
      return forward(target, prop);
    },
  });
}

/** The real D1, recording `meta.rows_read` of every statement of every batch (its sessions' too), per batch. */
export function batchRecorder(db: D1Database = env.DB): { db: D1Database; batches: number[][] } {
  const batches: number[][] = [];
  const recorded = (target: Pick<D1Database, "batch">) => async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
    const results = await target.batch<T>(statements);
    batches.push(results.map((r) => r.meta.rows_read));
    return results;
  };
  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === "batch") return recorded(target);
      // A session's batches are recorded too (the admin reads through one).
      if (prop === "withSession") {
        return (constraint?: string) => {
          const session = target.withSession(constraint);
          return { prepare: (q: string) => session.prepare(q), batch: recorded(session), getBookmark: () => session.getBookmark() };
        };
      }
      return forward(target, prop);
    },
  });
  return { db: wrapped, batches };
}

/** One statement the Worker prepared: its SQL and, when it went through a D1 session, the session's constraint. */
export interface PreparedRead {
  sql: string;
  session: string | null;
}

/**
 * The real D1, recording every statement prepared on it or on its sessions,
 * with the session's constraint (`first-primary`, a bookmark): which reads
 * could go to a replica once read replication is on.
 */
export function sessionRecorder(db: D1Database = env.DB): { db: D1Database; prepared: PreparedRead[] } {
  const prepared: PreparedRead[] = [];
  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") {
        return (sql: string) => {
          prepared.push({ sql, session: null });
          return target.prepare(sql);
        };
      }
      if (prop === "withSession") {
        return (constraint?: string) => {
          const session = target.withSession(constraint);
          return {
            prepare: (sql: string) => {
              prepared.push({ sql, session: constraint ?? "first-unconstrained" });
              return session.prepare(sql);
            },
            batch: <T>(statements: D1PreparedStatement[]) => session.batch<T>(statements),
            getBookmark: () => session.getBookmark(),
          };
        };
      }
      return forward(target, prop);
    },
  });
  return { db: wrapped, prepared };
}

/**
 * The real D1 where preparing a statement whose SQL matches `fails` throws
 * `error` (on the binding and on its sessions alike), as an outage of those
 * reads would; every other statement runs.
 */
export function d1FailingPrepare(fails: (sql: string) => boolean, error: () => Error, db: D1Database = env.DB): D1Database {
  const prepare = (target: Pick<D1Database, "prepare">) => (sql: string) => {
    if (fails(sql)) throw error();
    return target.prepare(sql);
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return prepare(target);
      if (prop === "withSession") {
        return (constraint?: string) => {
          const session = target.withSession(constraint);
          return { prepare: prepare(session), batch: <T>(s: D1PreparedStatement[]) => session.batch<T>(s), getBookmark: () => session.getBookmark() };
        };
      }
      return forward(target, prop);
    },
  });
}

/** One statement as D1 ran it: its SQL text and its own `meta` counts. */
export interface StatementCost {
  sql: string;
  rowsRead: number;
  rowsWritten: number;
  changes: number;
}

/**
 * A D1 (over `db`, default the real binding) recording each call's
 * statements with their own `meta`, one list per round trip: a batch is one
 * list, in statement order; run()/all()/first() are a list of one.
 */
export function statementRecorder(db: D1Database = env.DB): { db: D1Database; calls: StatementCost[][] } {
  const calls: StatementCost[][] = [];
  const cost = (sql: string, meta: D1Meta): StatementCost => ({ sql, rowsRead: meta.rows_read, rowsWritten: meta.rows_written, changes: meta.changes });
  // batch() must receive workerd's own statements, not our proxies.
  const inner = new WeakMap<D1PreparedStatement, { stmt: D1PreparedStatement; sql: string }>();
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrap(target.bind(...values), sql);
        if (prop === "run" || prop === "all") {
          return async () => {
            const res = await (prop === "run" ? target.run() : target.all());
            calls.push([cost(sql, res.meta)]);
            return res;
          };
        }
        if (prop === "first") {
          return async (column?: string) => {
            const res = await target.all<Record<string, unknown>>();
            calls.push([cost(sql, res.meta)]);
            const row = res.results[0];
            return row === undefined ? null : column === undefined ? row : row[column];
          };
        }
        return forward(target, prop);
      },
    });
    inner.set(proxy, { stmt, sql });
    return proxy;
  };
  const wrapped = new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === "batch") {
        return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
          const results = await target.batch<T>(statements.map((s) => inner.get(s)?.stmt ?? s));
          calls.push(results.map((r, i) => cost(inner.get(statements[i]!)?.sql ?? "(unrecorded)", r.meta)));
          return results;
        };
      }
      return forward(target, prop);
    },
  });
  return { db: wrapped, calls };
}
