/**
 * Helpers for the sweep, audit and retention tests (test/sweep) on the
 * Workers runtime with real D1 and real RunTracker Durable Objects.
 *
 * - Runs are created through RunService directly: no queue message is sent
 *   and no tracker is told, so nothing but the test moves them.
 * - Time passes in D1 by rewriting the row: `makeOverdue` moves every
 *   timestamp of a run into the past until its `deadline_at` lies a given
 *   distance beyond the sweep's grace, keeping the row self-consistent.
 * - "The tracker cannot act" is a SweepTracker stub that rejects or hangs.
 * - Storage is per test FILE, and the sweep reads every overdue run of the
 *   file's D1: `drainOverdue()` resolves what earlier tests left behind, so a
 *   report's counts belong to the test that asserts them.
 */
import { DEMO, DEMO_INPUT } from "./demo";
import { capturingConsole, type Captured } from "./logs";
import { eventsOf, eventsOfWorkspace, type StoredEvent } from "./runs";
import { createExecutionContext, createMessageBatch, getQueueResult, type QueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { DEFAULT_SETTINGS, displayState, type DisplayState, type DisplayStateKind } from "../../src/lifecycle";
import { getOperation, policyFor, registeredPolicies } from "../../src/operations";
import {
  displayStateCondition,
  listRuns,
  RunService,
  type Actor,
  type Diagnostics,
  type RunRecord,
  type RunRow,
} from "../../src/runs";
import { runSweep, type SweepOptions, type SweepReport, type SweepTracker } from "../../src/sweep/sweep";
import type { TrackerStatus } from "../../src/tracker";
import { bridgeMessage } from "../../src/queue/dead-letter";
import { operationMessageFor } from "../../src/queue/messages";

export const SETTINGS = DEFAULT_SETTINGS;
export const GRACE_MS = DEFAULT_SETTINGS.sweepGraceMs;
export { DEMO_POLICY } from "./demo";

export function service(clock: () => number = Date.now, db: D1Database = env.DB): RunService {
  return new RunService(db, { policyFor, settings: SETTINGS, clock });
}

export interface NewRun {
  type?: string;
  initiator?: Actor;
  clock?: () => number;
}

/** A queued run created through the service (no tracker state, no queue message). */
export async function createQueued(workspaceId: string, opts: NewRun = {}): Promise<RunRecord> {
  const c = await service(opts.clock).create({
    workspaceId,
    type: opts.type ?? DEMO,
    input: DEMO_INPUT,
    initiator: opts.initiator ?? "user:sweep-test",
  });
  if (!c.ok || !c.created) throw new Error(`create did not create a run: ${JSON.stringify(c)}`);
  return c.run;
}

/** A run claimed by attempt 1 through the service, then left alone (no tracker state). */
export async function createRunning(workspaceId: string, opts: NewRun = {}): Promise<RunRecord> {
  const run = await createQueued(workspaceId, opts);
  const a = await service(opts.clock).claim(run.id, 1);
  if (!a.ok) throw new Error(`claim refused: ${a.refusal}`);
  return a.run;
}

export async function storedRow(runId: string): Promise<RunRow> {
  const row = await env.DB.prepare("SELECT * FROM operation_runs WHERE id = ?").bind(runId).first<RunRow>();
  if (!row) throw new Error(`no row for ${runId}`);
  return row;
}

export async function getRun(runId: string): Promise<RunRecord> {
  const run = await service().getById(runId);
  if (!run) throw new Error(`run ${runId} not found`);
  return run;
}

export function diagnosticsOf(row: RunRow): Diagnostics {
  return JSON.parse(row.diagnostics) as Diagnostics;
}

/** Move every timestamp of a run `ms` into the past, as if all of it had happened `ms` earlier. */
export async function backdate(runId: string, ms: number): Promise<RunRow> {
  const res = await env.DB.prepare(
    `UPDATE operation_runs
        SET created_at = created_at - ?1,
            started_at = started_at - ?1,
            last_heartbeat_at = last_heartbeat_at - ?1,
            deadline_at = deadline_at - ?1,
            completed_at = completed_at - ?1,
            updated_at = updated_at - ?1
      WHERE id = ?2`,
  )
    .bind(ms, runId)
    .run();
  expect(res.meta.changes, `backdate ${runId}`).toBe(1);
  return storedRow(runId);
}

/**
 * Backdate a live run so that, at `now`, its D1 deadline lies `byMs` beyond
 * the sweep's grace (`byMs` ≤ 0: inside the grace, not yet the sweep's).
 */
export async function makeOverdue(runId: string, byMs = 1_000, now = Date.now()): Promise<RunRow> {
  const row = await storedRow(runId);
  if (row.deadline_at === null) throw new Error(`${runId} is terminal: no deadline to move`);
  const shift = row.deadline_at - (now - GRACE_MS) + byMs;
  const aged = await backdate(runId, shift);
  expect(aged.deadline_at).toBe(now - GRACE_MS - byMs);
  return aged;
}

/** Set the D1 deadline (only) of a live run. */
export async function setDeadline(runId: string, deadlineAt: number): Promise<void> {
  const res = await env.DB.prepare("UPDATE operation_runs SET deadline_at = ? WHERE id = ? AND status <> 'completed'")
    .bind(deadlineAt, runId)
    .run();
  expect(res.meta.changes).toBe(1);
}

export { eventsOf, onlyEvent, type StoredEvent } from "./runs";

export async function actionsOf(runId: string): Promise<string[]> {
  return (await eventsOf(runId)).map((e) => e.action);
}

/** Every event of a workspace, newest first (what listAuditEvents must page through). */
export function workspaceEventsNewestFirst(workspaceId: string): Promise<StoredEvent[]> {
  return eventsOfWorkspace(workspaceId, "DESC");
}

// ---------- sweeping ----------

export function sweepOptions(over: Partial<SweepOptions> = {}): SweepOptions {
  return { batchSize: 50, budgetMs: 20_000, trackerTimeoutMs: 2_000, ...over };
}

/** runSweep over the real D1 (and, unless replaced, the real trackers). */
export function sweep(over: Partial<SweepOptions> = {}, db: D1Database = env.DB): Promise<SweepReport> {
  return runSweep(db, env, sweepOptions(over));
}

export function reconciledTotal(report: SweepReport): number {
  return Object.values(report.reconciled).reduce((a, b) => a + b, 0);
}

/** A tracker that cannot act: every call rejects, or never answers. Records who was asked, in order. */
export function unableTracker(mode: "rejects" | "hangs"): { tracker: (runId: string) => SweepTracker; asked: string[]; refreshed: string[] } {
  const asked: string[] = [];
  const refreshed: string[] = [];
  const never = new Promise<never>(() => {});
  return {
    asked,
    refreshed,
    tracker: (runId) => ({
      status() {
        asked.push(runId);
        return mode === "hangs" ? never : Promise.reject(new Error("injected: tracker unreachable"));
      },
      refresh() {
        refreshed.push(runId);
        return mode === "hangs" ? never : Promise.reject(new Error("injected: tracker unreachable"));
      },
      track() {
        return mode === "hangs" ? never : Promise.reject(new Error("injected: tracker unreachable"));
      },
    }),
  };
}

/** A tracker stub answering with `status`, and whose refresh() behaves as told. */
export function answeringTracker(
  status: (runId: string) => TrackerStatus,
  refresh: "hangs" | "rejects" | { refreshed: boolean },
): (runId: string) => SweepTracker {
  return (runId) => ({
    status: async () => status(runId),
    refresh: () =>
      refresh === "hangs"
        ? new Promise<never>(() => {})
        : refresh === "rejects"
          ? Promise.reject(new Error("injected: refresh failed"))
          : Promise.resolve(refresh),
    track: () => Promise.reject(new Error("injected: this stub does not track")),
  });
}

/**
 * Resolve whatever earlier tests of this file left overdue, so the next
 * report counts only the calling test's runs. Asserts the file is clean after.
 */
export async function drainOverdue(): Promise<void> {
  await sweep({ tracker: unableTracker("rejects").tracker, budgetMs: 60_000, batchSize: 500 });
  const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE status <> 'completed' AND deadline_at < ?")
    .bind(Date.now() - GRACE_MS)
    .first<{ n: number }>();
  expect(left?.n, "overdue runs left by earlier tests").toBe(0);
}

/** The real env with some [vars] replaced by raw strings, as a misconfigured deploy would have them. */
export function envWithVars(vars: Partial<Record<"RETENTION_DAYS" | "SWEEP_BATCH_SIZE" | "SWEEP_BUDGET_MS", string>>): Env {
  // Env types each var as the literal in wrangler.toml; a bad value is exactly what this test double models.
  return { ...env, ...vars } as unknown as Env;
}

// ---------- the dead-letter bridge ----------

export const DLQ = "operations-dlq";

/**
 * Bridge one dead-lettered message for `run` through the real bridge (as the
 * DLQ consumer does), and report how the message was settled.
 */
export async function bridgeDeadLetter(run: { id: string; workspaceId: string; type: string }, attempts = 1, dispatch = 1): Promise<QueueResult> {
  const batch = createMessageBatch(DLQ, [{ id: `dlq_${crypto.randomUUID()}`, timestamp: Date.now(), attempts, body: operationMessageFor(run, dispatch) }]);
  await bridgeMessage(batch.messages[0]!, DLQ, env);
  return getQueueResult(batch, createExecutionContext());
}

// ---------- what operators see ----------

/** The display state as the API derives it (the type's own policy, or none when the type is gone). */
export function displayOf(run: RunRecord, now = Date.now()): DisplayState {
  return displayState(run, getOperation(run.type)?.policy ?? null, SETTINGS, now);
}

/** Ids of the workspace's runs in a display state, through listRuns and the SQL display filter. */
export async function idsInDisplayState(workspaceId: string, kind: DisplayStateKind, now = Date.now()): Promise<string[]> {
  const page = await listRuns(env.DB, workspaceId, {
    limit: 100,
    where: displayStateCondition(kind, registeredPolicies(), SETTINGS, now),
  });
  return page.runs.map((r) => r.id);
}

// ---------- logs ----------

/** Captures console.log (the log's info level) while `fn` runs. */
export function capturingLog<T>(fn: () => Promise<T>): Promise<Captured<T>> {
  return capturingConsole("log", fn);
}

/** Same for console.error (the log's error level). */
export function capturingErrors<T>(fn: () => Promise<T>): Promise<Captured<T>> {
  return capturingConsole("error", fn);
}
