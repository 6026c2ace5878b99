/**
 * The run record as the code sees it, and its mapping from D1 rows. JSON
 * columns are written only by this service, but are still parsed defensively:
 * a corrupt value reads as empty rather than taking a page down.
 */
import {
  EMPTY_PROGRESS,
  isReasonCode,
  type Detector,
  type Outcome,
  type Progress,
  type ReasonCode,
  type RunState,
  type RunStatus,
} from "../lifecycle";

/** What JSON.parse can return: the type of stored JSON columns (and serialisable over RPC). */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export interface AttemptSummary {
  attempt: number;
  startedAt: number;
  endedAt?: number;
  /** How the attempt ended: an outcome, a reason code, or a takeover. */
  ended?: string;
  error?: string;
}

export interface Diagnostics {
  attempts: AttemptSummary[];
  /** The original last error of an attempt, kept even when a reconciliation decides. */
  lastError?: { attempt: number; message: string; reasonCode?: ReasonCode; at: number };
  /** Errors raised outside the handler (a result write, a tracker call), newest last. */
  infrastructureErrors?: { at: number; where: string; message: string }[];
  detectedBy?: Detector;
  /** What the detector saw: last heartbeat, deadline, thresholds in force, … */
  evidence?: Record<string, unknown>;
  thresholds?: Record<string, number>;
  /** An operator's reason for cancelling the run, as they gave it (sanitised); `null` when they gave none. */
  cancelReason?: string | null;
}

export interface RunRecord {
  id: string;
  workspaceId: string;
  type: string;
  status: RunStatus;
  outcome: Outcome;
  attempt: number;
  maxAttempts: number;
  input: JsonValue;
  progress: Progress;
  createdAt: number;
  startedAt: number | null;
  completedAt: number | null;
  lastHeartbeatAt: number | null;
  deadlineAt: number | null;
  reasonCode: ReasonCode | null;
  failureMessage: string | null;
  diagnostics: Diagnostics;
  reconciledBy: Detector | null;
  idempotencyKey: string | null;
  initiator: string;
  updatedAt: number;
  /** The run this one re-drives (contract section 7); `null` otherwise. */
  retryOf: string | null;
  /** What the handler returned on success or partial success (contract section 1); `null` otherwise. */
  output: JsonValue;
  /** When an operator asked to cancel the run (epoch ms), and who (an audit actor); `null` when nobody did. */
  cancelRequestedAt: number | null;
  cancelRequestedBy: string | null;
}

/** Every column of `operation_runs`, in table order: the select list of every run query. */
export const RUN_COLUMNS =
  "id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress, created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message, diagnostics, reconciled_by, idempotency_key, initiator, updated_at, retry_of, output, cancel_requested_at, cancel_requested_by";

/** A row of `operation_runs` as D1 returns it (snake_case columns). */
export interface RunRow {
  id: string;
  workspace_id: string;
  type: string;
  status: RunStatus;
  outcome: Outcome;
  attempt: number;
  max_attempts: number;
  input: string;
  progress: string;
  created_at: number;
  started_at: number | null;
  completed_at: number | null;
  last_heartbeat_at: number | null;
  deadline_at: number | null;
  reason_code: string | null;
  failure_message: string | null;
  diagnostics: string;
  reconciled_by: Detector | null;
  idempotency_key: string | null;
  initiator: string;
  updated_at: number;
  retry_of: string | null;
  output: string | null;
  cancel_requested_at: number | null;
  cancel_requested_by: string | null;
}

function parseJson(text: string): JsonValue {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    // Only this service writes these columns; a parse failure means corruption,
    // which callers see as an empty value rather than a crash.
    return null;
  }
}

function asProgress(value: unknown): Progress {
  if (typeof value !== "object" || value === null) return { ...EMPTY_PROGRESS };
  const v = value as Record<string, unknown>;
  const n = (k: string) => (typeof v[k] === "number" && Number.isFinite(v[k]) ? (v[k] as number) : 0);
  return { total: n("total"), processed: n("processed"), succeeded: n("succeeded"), failed: n("failed") };
}

function asDiagnostics(value: unknown): Diagnostics {
  if (typeof value !== "object" || value === null || !Array.isArray((value as { attempts?: unknown }).attempts)) {
    return { attempts: [] };
  }
  return value as Diagnostics;
}

export function rowToRecord(row: RunRow): RunRecord {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    type: row.type,
    status: row.status,
    outcome: row.outcome,
    attempt: row.attempt,
    maxAttempts: row.max_attempts,
    input: parseJson(row.input),
    progress: asProgress(parseJson(row.progress)),
    createdAt: row.created_at,
    startedAt: row.started_at,
    completedAt: row.completed_at,
    lastHeartbeatAt: row.last_heartbeat_at,
    deadlineAt: row.deadline_at,
    reasonCode: isReasonCode(row.reason_code) ? row.reason_code : null,
    failureMessage: row.failure_message,
    diagnostics: asDiagnostics(parseJson(row.diagnostics)),
    reconciledBy: row.reconciled_by,
    idempotencyKey: row.idempotency_key,
    initiator: row.initiator,
    updatedAt: row.updated_at,
    retryOf: row.retry_of,
    output: row.output === null ? null : parseJson(row.output),
    cancelRequestedAt: row.cancel_requested_at ?? null,
    cancelRequestedBy: row.cancel_requested_by ?? null,
  };
}

/**
 * The row a record was read from, as `rowToRecord`'s inverse (JSON columns
 * re-serialised): for building the row a write leaves without reading it
 * back (src/runs/service.ts).
 */
export function recordToRow(run: RunRecord): RunRow {
  return {
    id: run.id,
    workspace_id: run.workspaceId,
    type: run.type,
    status: run.status,
    outcome: run.outcome,
    attempt: run.attempt,
    max_attempts: run.maxAttempts,
    input: JSON.stringify(run.input),
    progress: JSON.stringify(run.progress),
    created_at: run.createdAt,
    started_at: run.startedAt,
    completed_at: run.completedAt,
    last_heartbeat_at: run.lastHeartbeatAt,
    deadline_at: run.deadlineAt,
    reason_code: run.reasonCode,
    failure_message: run.failureMessage,
    diagnostics: JSON.stringify(run.diagnostics),
    reconciled_by: run.reconciledBy,
    idempotency_key: run.idempotencyKey,
    initiator: run.initiator,
    updated_at: run.updatedAt,
    retry_of: run.retryOf,
    output: run.output === null ? null : JSON.stringify(run.output),
    cancel_requested_at: run.cancelRequestedAt,
    cancel_requested_by: run.cancelRequestedBy,
  };
}

export function stateOf(run: RunRecord): RunState {
  return {
    status: run.status,
    outcome: run.outcome,
    attempt: run.attempt,
    maxAttempts: run.maxAttempts,
    reasonCode: run.reasonCode,
    reconciledBy: run.reconciledBy,
    cancelRequested: run.cancelRequestedAt !== null,
  };
}
