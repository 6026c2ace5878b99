/**
 * Helpers for the run-service tests on real D1: raw reads of what is stored
 * (snake_case rows and audit events, not the service's own view of them).
 * The D1 wrappers that make races and failures happen on purpose are in
 * ./d1.ts; failingD1 is re-exported for the tracker tests that import it here.
 */
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService, type RunRecord, type RunRow } from "../../src/runs";
import { DEMO, DEMO_INPUT } from "./demo";

export { failingD1 } from "./d1";
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
