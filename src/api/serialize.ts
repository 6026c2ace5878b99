import { reasonFamily } from "../lifecycle";
import { displayStateOf } from "../run-service";
import { retriesOf, type AuditEvent, type RunRecord } from "../runs";
import type { D1Reader } from "../db/read-session";
import type { RunEventJson, RunJson } from "./schemas";

function iso(ms: number): string;
function iso(ms: number | null): string | null;
function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/**
 * The run as the API shows it (contract field names, times in ISO 8601).
 * `retriedBy`: the ids of the runs that retry it, newest first (`retriesOf`;
 * `runsJson` reads them for you).
 */
export function runJson(run: RunRecord, now: number, retriedBy: readonly string[]): RunJson {
  const display = displayStateOf(run, now);
  return {
    id: run.id,
    workspaceId: run.workspaceId,
    type: run.type,
    status: run.status,
    outcome: run.outcome,
    displayState: display.kind,
    displayLabel: display.label,
    attempt: run.attempt,
    maxAttempts: run.maxAttempts,
    createdAt: iso(run.createdAt),
    startedAt: iso(run.startedAt),
    completedAt: iso(run.completedAt),
    lastHeartbeatAt: iso(run.lastHeartbeatAt),
    progress: run.progress,
    reasonCode: run.reasonCode,
    reasonFamily: run.reasonCode ? reasonFamily(run.reasonCode) : null,
    reconciledBy: run.reconciledBy,
    failureMessage: run.failureMessage,
    // Waiting for another attempt: which one ended and how (a reason code, or
    // "heartbeat lost"; the raw error stays in diagnostics), and when the next is due.
    retry:
      display.kind === "retrying" && display.retry
        ? {
            afterAttempt: display.retry.afterAttempt,
            ended: run.diagnostics.attempts.find((a) => a.attempt === display.retry?.afterAttempt)?.ended ?? null,
            nextAttemptAt: iso(display.retry.dueAt),
          }
        : null,
    // Contract section 1 and 7: what the handler returned (null until it succeeds), and the
    // links between a run and its retries (each is a new run; the original never changes).
    output: run.output,
    retryOf: run.retryOf,
    retriedBy: [...retriedBy],
    // An operator's cancel (contract section 7): when it was asked for, and by whom (an audit actor).
    cancelRequestedAt: iso(run.cancelRequestedAt),
    cancelRequestedBy: run.cancelRequestedBy,
  };
}

/** `runJson` of each run, with their retries read in one query. */
export async function runsJson(db: D1Reader, workspaceId: string, runs: readonly RunRecord[], now: number): Promise<RunJson[]> {
  const retries = await retriesOf(db, workspaceId, runs.map((r) => r.id));
  return runs.map((r) => runJson(r, now, retries.get(r.id) ?? []));
}

/** One audit event of a run's history, as the API shows it. */
export function eventJson(e: AuditEvent): RunEventJson {
  return { id: e.id, action: e.action, actor: e.actor, createdAt: iso(e.createdAt), metadata: e.metadata };
}
