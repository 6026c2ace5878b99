/**
 * Helpers for the run-service tests on real D1: raw reads of what is stored
 * (snake_case rows and audit events, not the service's own view of them) and
 * D1 wrappers that make races and failures happen on purpose.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService, type RunRecord, type RunRow } from "../../src/runs";

export const DEMO = "demo.work";
export const DEMO_POLICY = policyFor(DEMO);
export const DEMO_INPUT = { steps: 3, stepMs: 0 };
/** A fixed start for manual clocks, so deadlines are exact numbers. */
export const T0 = Date.UTC(2026, 0, 1);

/** A service over any D1 (a wrapper or the real binding) with the real registry. */
export function serviceOn(db: D1Database, clock: () => number = Date.now): RunService {
  return new RunService(db, { policyFor, settings: DEFAULT_SETTINGS, clock });
}

/** Create a demo.work run and insist it was created. */
export async function newRun(svc: RunService, workspaceId: string, input: unknown = DEMO_INPUT): Promise<RunRecord> {
  const c = await svc.create({ workspaceId, type: DEMO, input, initiator: "user:test" });
  if (!c.ok || !c.created) throw new Error(`create did not create a run: ${JSON.stringify(c)}`);
  return c.run;
}

/** The stored row exactly as D1 holds it. */
export async function storedRow(runId: string): Promise<RunRow> {
  const row = await env.DB.prepare("SELECT * FROM operation_runs WHERE id = ?").bind(runId).first<RunRow>();
  if (!row) throw new Error(`no row for ${runId}`);
  return row;
}

export interface StoredEvent {
  id: string;
  workspaceId: string;
  actor: string;
  action: string;
  subjectType: string;
  subjectId: string;
  metadata: Record<string, unknown>;
  createdAt: number;
}

interface EventRow {
  id: string;
  workspace_id: string;
  actor: string;
  action: string;
  subject_type: string;
  subject_id: string;
  metadata: string;
  created_at: number;
}

function toEvent(r: EventRow): StoredEvent {
  const metadata: unknown = JSON.parse(r.metadata);
  if (typeof metadata !== "object" || metadata === null || Array.isArray(metadata)) {
    throw new Error(`metadata of ${r.id} is not an object`);
  }
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    actor: r.actor,
    action: r.action,
    subjectType: r.subject_type,
    subjectId: r.subject_id,
    metadata: metadata as Record<string, unknown>,
    createdAt: r.created_at,
  };
}

/** A run's audit events in order (ids are time-ordered). */
export async function eventsOf(runId: string): Promise<StoredEvent[]> {
  const res = await env.DB.prepare("SELECT * FROM audit_events WHERE subject_type = 'run' AND subject_id = ? ORDER BY id")
    .bind(runId)
    .all<EventRow>();
  return res.results.map(toEvent);
}

/** Events about any subject (a run or, e.g., a queue message), in order. */
export async function eventsAbout(subjectId: string): Promise<StoredEvent[]> {
  const res = await env.DB.prepare("SELECT * FROM audit_events WHERE subject_id = ? ORDER BY id").bind(subjectId).all<EventRow>();
  return res.results.map(toEvent);
}

/** Every audit event of a workspace, oldest first (catches events filed under a losing writer's run id). */
export async function eventsOfWorkspace(workspaceId: string, order: "ASC" | "DESC" = "ASC"): Promise<StoredEvent[]> {
  const res = await env.DB.prepare(`SELECT * FROM audit_events WHERE workspace_id = ? ORDER BY id ${order}`).bind(workspaceId).all<EventRow>();
  return res.results.map(toEvent);
}

export async function countRuns(workspaceId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(workspaceId).first<{ n: number }>();
  return row?.n ?? -1;
}

/** The single event of `action` for the run; fails unless there is exactly one. */
export async function onlyEvent(runId: string, action: string): Promise<StoredEvent> {
  const matching = (await eventsOf(runId)).filter((e) => e.action === action);
  expect(matching, `events ${action} of ${runId}`).toHaveLength(1);
  return matching[0]!;
}

/** Everything a refusal must leave alone: the stored row and the audit trail. */
export async function snapshot(runId: string): Promise<{ row: RunRow; events: StoredEvent[] }> {
  return { row: await storedRow(runId), events: await eventsOf(runId) };
}

export function parsed<T = Record<string, unknown>>(json: string): T {
  return JSON.parse(json) as T;
}

/** Forwards every property of the real binding, bound to it (workerd's classes need their own `this`). */
function forward<T extends object>(target: T, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop, target);
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

export interface BarrierD1 {
  db: D1Database;
  /** `meta.changes` of the first statement (the compare-and-set) of each batch, in completion order. */
  casChanges: number[];
  batches: number;
}

/**
 * A D1 whose first `writers` batch() calls are held until all of them have
 * been issued: each writer has read and decided before any of them writes,
 * so the compare-and-set alone must pick the winner. Later batches (a loser's
 * second round) pass straight through. A writer that never arrives fails the
 * barrier after `timeoutMs` instead of hanging the test.
 */
export function barrierD1(writers = 2, timeoutMs = 3_000): BarrierD1 {
  const real = env.DB;
  const state: BarrierD1 = { db: real, casChanges: [], batches: 0 };
  let arrived = 0;
  let release!: () => void;
  let fail!: (e: Error) => void;
  const allIn = new Promise<void>((resolve, reject) => {
    release = resolve;
    fail = reject;
  });
  const timer = setTimeout(() => fail(new Error(`barrier: only ${arrived} of ${writers} writers reached batch()`)), timeoutMs);
  state.db = new Proxy(real, {
    get(target, prop) {
      if (prop !== "batch") return forward(target, prop);
      return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
        state.batches++;
        if (arrived < writers) {
          arrived++;
          if (arrived === writers) {
            clearTimeout(timer);
            release();
          }
          await allIn;
        }
        const results = await target.batch<T>(statements);
        state.casChanges.push(results[0]?.meta.changes ?? -1);
        return results;
      };
    },
  });
  return state;
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

/** A D1 that records the `meta` of every statement run through run()/all()/batch(). */
export function meteredD1(): { db: D1Database; writes: { sql: string; changes: number; rowsWritten: number }[] } {
  const writes: { sql: string; changes: number; rowsWritten: number }[] = [];
  const record = (sql: string, meta: D1Meta) => writes.push({ sql, changes: meta.changes, rowsWritten: meta.rows_written });
  // batch() must receive workerd's own statements, not our proxies.
  const unwrapped = new WeakMap<D1PreparedStatement, D1PreparedStatement>();
  const wrapStatement = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const proxy = new Proxy(stmt, {
      get(target, prop) {
        if (prop === "bind") return (...values: unknown[]) => wrapStatement(target.bind(...values), sql);
        if (prop === "run" || prop === "all") {
          return async () => {
            const res = await (prop === "run" ? target.run() : target.all());
            record(sql, res.meta);
            return res;
          };
        }
        return forward(target, prop);
      },
    });
    unwrapped.set(proxy, stmt);
    return proxy;
  };
  const db = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrapStatement(target.prepare(sql), sql);
      if (prop === "batch") {
        return async <T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> => {
          const results = await target.batch<T>(statements.map((s) => unwrapped.get(s) ?? s));
          for (const r of results) record("(batch)", r.meta);
          return results;
        };
      }
      return forward(target, prop);
    },
  });
  return { db, writes };
}
