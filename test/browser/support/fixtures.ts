/**
 * What the browser tests look at, written straight into the local D1 with
 * controlled timestamps: a workspace and its owner per test file (so files
 * share no rows), runs in every display state, one run whose failure message
 * is an XSS payload, and the audit events each run's history would have left.
 *
 * Rows are shaped like the ones RunService writes (ids with a time prefix,
 * deadlines, diagnostics, event metadata), but inserted as SQL: a browser
 * test cannot reach the service, and a run cannot be made stale any other
 * way than by time passing.
 */
import { randomBytes } from "node:crypto";
import { DEFAULT_SETTINGS, explainReason, type DisplayStateKind, type ReasonCode } from "../../../src/lifecycle";
import { registeredPolicy } from "../../../scripts/lib/registry";
import type { Diagnostics, RunRow } from "../../../src/runs/records";
import { hashToken, sqlString } from "../../../scripts/lib/seed";

export const DEMO = "demo.work";
// Read from the Worker's registry without importing Worker code (scripts/lib/registry.ts).
export const POLICY = await registeredPolicy("demo.work");
/** Silent this long, a running demo.work run shows as stale (heartbeat timeout + D1 flush interval). */
export const STALE_AFTER_MS = POLICY.heartbeatTimeoutMs + DEFAULT_SETTINGS.heartbeatFlushIntervalMs;

export const XSS_SCRIPT = "<script>window.__xss=1</script>";
export const XSS_IMG = `<img src=x onerror="window.__xss=2">`;
export const XSS_MESSAGE = `Import failed: ${XSS_SCRIPT} ${XSS_IMG}`;

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A ULID-shaped id: the time's 10-character prefix, then 16 random characters (ids sort by creation). */
function ulid(ms: number): string {
  let t = Math.floor(ms);
  let time = "";
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32]! + time;
    t = Math.floor(t / 32);
  }
  return time + Array.from(randomBytes(16), (b) => CROCKFORD[b % 32]).join("");
}

/** SQL for "now" in epoch ms, evaluated when the statement runs (not when it was written). */
const SQL_NOW = "CAST(unixepoch('subsec') * 1000 AS INTEGER)";

/** A value: a literal, or raw SQL (only SQL_NOW arithmetic built here). */
type Value = string | number | null | { sql: string };

function sqlValue(v: Value): string {
  if (v === null) return "NULL";
  if (typeof v === "number") return String(Math.trunc(v));
  if (typeof v === "string") return sqlString(v);
  return `(${v.sql})`;
}

function insert(table: string, row: Record<string, Value>): string {
  const cols = Object.keys(row);
  return `INSERT INTO ${table} (${cols.join(", ")}) VALUES (${cols.map((c) => sqlValue(row[c]!)).join(", ")});`;
}

export interface Workspace {
  id: string;
  name: string;
  ownerEmail: string;
  /** Its API token, when asked for. */
  token?: string;
}

/** A workspace of its own with one owner (and optionally an API token): `tag` names both. */
export function workspaceSql(tag: string, opts: { token?: boolean } = {}): { workspace: Workspace; sql: string } {
  const now = Date.now();
  const id = `ws_browser_${tag}`;
  const userId = `usr_browser_${tag}`;
  const workspace: Workspace = { id, name: `Browser ${tag}`, ownerEmail: `owner@${tag}.browser.test` };
  const lines = [
    insert("workspaces", { id, slug: `browser-${tag}`, name: workspace.name, created_at: now }),
    insert("users", { id: userId, email: workspace.ownerEmail, name: `Owner (${tag})`, created_at: now }),
    insert("memberships", { workspace_id: id, user_id: userId, role: "owner", created_at: now }),
  ];
  if (opts.token) {
    workspace.token = `olt_${randomBytes(32).toString("base64url")}`;
    lines.push(insert("api_tokens", { id: `tok_browser_${tag}`, workspace_id: id, name: `Browser tests (${tag})`, token_hash: hashToken(workspace.token), created_at: now }));
  }
  return { workspace, sql: lines.join("\n") + "\n" };
}

type RunValues = { [K in keyof RunRow]: Value };

interface EventSpec {
  at: number;
  actor: string;
  action: string;
  metadata: Record<string, unknown>;
}

export interface SeededRun {
  id: string;
  /** The run's audit events, oldest first. */
  events: Array<{ id: string; action: string }>;
}

const thresholds = {
  heartbeatTimeoutMs: POLICY.heartbeatTimeoutMs,
  heartbeatFlushIntervalMs: DEFAULT_SETTINGS.heartbeatFlushIntervalMs,
  staleQueuedAfterMs: POLICY.staleQueuedAfterMs,
  staleRunningAfterMs: POLICY.staleRunningAfterMs,
};

const progressOf = (total: number, processed: number, failed = 0) => JSON.stringify({ total, processed, succeeded: processed - failed, failed });

/** Who cancels the seeded Cancelling and Cancelled runs. */
const CANCELLER = "user:operator@demo.test";

/** What to seed: a display state, or the failed run whose message and last error are XSS payloads. */
export type RunKind = DisplayStateKind | "failed_xss";

/**
 * One run in `kind` at `now`, and its events. Timestamps are what the
 * service would have written: a queued run's deadline is its creation plus
 * staleQueuedAfterMs; a running one's is its last flushed heartbeat plus
 * staleRunningAfterMs. The fresh running run's heartbeat is the moment the
 * SQL runs, so it stays fresh for STALE_AFTER_MS from then.
 */
function runOf(workspaceId: string, kind: RunKind, now: number): { run: RunValues; events: EventSpec[] } {
  const created = {
    queued: now - 5_000,
    retrying: now - 60_000,
    queued_overdue: now - POLICY.staleQueuedAfterMs - 8 * 60_000,
    running: now - 40_000,
    running_stale: now - 20 * 60_000,
    succeeded: now - 30 * 60_000,
    partially_succeeded: now - 29 * 60_000,
    failed: now - 28 * 60_000,
    failed_reconciled: now - 27 * 60_000,
    failed_xss: now - 26 * 60_000,
    cancelling: now - 50_000,
    cancelled: now - 25 * 60_000,
  }[kind];
  const id = `run_${ulid(created)}`;
  const started = created + 2_000;
  const base: RunValues = {
    id,
    workspace_id: workspaceId,
    type: DEMO,
    status: "queued",
    outcome: "pending",
    attempt: 0,
    max_attempts: POLICY.maxAttempts,
    input: JSON.stringify({ steps: 10, stepMs: 500 }),
    progress: progressOf(0, 0),
    created_at: created,
    started_at: null,
    completed_at: null,
    last_heartbeat_at: null,
    deadline_at: created + POLICY.staleQueuedAfterMs,
    reason_code: null,
    failure_message: null,
    diagnostics: JSON.stringify({ attempts: [], thresholds } satisfies Diagnostics),
    reconciled_by: null,
    idempotency_key: null,
    initiator: "api-token:tok_browser",
    updated_at: created,
    retry_of: null,
    output: null,
    cancel_requested_at: null,
    cancel_requested_by: null,
  };
  const events: EventSpec[] = [
    { at: created, actor: "api-token:tok_browser", action: "run.queued", metadata: { type: DEMO, maxAttempts: POLICY.maxAttempts, idempotencyKey: null } },
  ];
  if (kind === "queued" || kind === "queued_overdue") {
    if (kind === "queued_overdue") base.deadline_at = now - 8 * 60_000;
    return { run: base, events };
  }

  // Everything else started attempt 1.
  events.push({ at: started, actor: "system:consumer", action: "run.attempt_started", metadata: { from: "queued", to: "running", attempt: 1 } });
  const running: RunValues = {
    ...base,
    status: "running",
    attempt: 1,
    started_at: started,
    last_heartbeat_at: started,
    deadline_at: started + POLICY.staleRunningAfterMs,
    progress: progressOf(10, 4),
    diagnostics: JSON.stringify({ attempts: [{ attempt: 1, startedAt: started }], thresholds } satisfies Diagnostics),
    updated_at: started,
  };
  if (kind === "running") {
    return {
      run: {
        ...running,
        last_heartbeat_at: { sql: SQL_NOW },
        deadline_at: { sql: `${SQL_NOW} + ${POLICY.staleRunningAfterMs}` },
        updated_at: { sql: SQL_NOW },
      },
      events,
    };
  }
  if (kind === "cancelling") {
    // Cancel asked for 1 s ago; its attempt is alive (heartbeat now) and not yet stopped.
    const asked = now - 1_000;
    events.push({ at: asked, actor: CANCELLER, action: "run.cancel_requested", metadata: { from: "running", to: "running", attempt: 1, reason: null } });
    return {
      run: {
        ...running,
        last_heartbeat_at: { sql: SQL_NOW },
        deadline_at: { sql: `${SQL_NOW} + ${POLICY.staleRunningAfterMs}` },
        updated_at: asked,
        cancel_requested_at: asked,
        cancel_requested_by: CANCELLER,
      },
      events,
    };
  }
  if (kind === "retrying") {
    // Attempt 1 threw a retryable error 2 s ago; attempt 2 is due retryDelaySeconds later.
    const failedAt = now - 2_000;
    const dueAt = failedAt + POLICY.retryDelaySeconds * 1000;
    const error = "upstream 503 from inventory API";
    events.push({ at: failedAt, actor: "system:consumer", action: "run.attempt_failed", metadata: { from: "running", to: "queued", attempt: 1, reason: "handler.error", error, retryAt: dueAt } });
    const diagnostics: Diagnostics = {
      attempts: [{ attempt: 1, startedAt: started, endedAt: failedAt, ended: "handler.error", error }],
      lastError: { attempt: 1, message: error, reasonCode: "handler.error", at: failedAt },
      thresholds,
    };
    return {
      run: { ...running, status: "queued", deadline_at: dueAt + POLICY.staleQueuedAfterMs, last_heartbeat_at: failedAt - 500, diagnostics: JSON.stringify(diagnostics), updated_at: failedAt },
      events,
    };
  }
  if (kind === "running_stale") {
    const heartbeat = now - 6 * 60_000;
    return { run: { ...running, last_heartbeat_at: heartbeat, deadline_at: heartbeat + POLICY.staleRunningAfterMs, updated_at: heartbeat }, events };
  }

  // Terminal kinds.
  const ended = started + 5_000;
  const completed = (outcome: string, reason: ReasonCode | null, message: string | null, diagnostics: Diagnostics, progress: string): RunValues => ({
    ...running,
    status: "completed",
    outcome,
    completed_at: ended,
    last_heartbeat_at: ended - 1_000,
    deadline_at: null,
    reason_code: reason,
    failure_message: message,
    diagnostics: JSON.stringify(diagnostics),
    progress,
    updated_at: ended,
  });
  const attempt = (ended_: string, error?: string) => [{ attempt: 1, startedAt: started, endedAt: ended, ended: ended_, ...(error ? { error } : {}) }];
  switch (kind) {
    case "succeeded":
      events.push({ at: ended, actor: "system:consumer", action: "run.completed", metadata: { from: "running", to: "completed", attempt: 1, outcome: "succeeded", message: null } });
      return { run: completed("succeeded", null, null, { attempts: attempt("succeeded"), thresholds }, progressOf(10, 10)), events };
    case "partially_succeeded": {
      const message = "1 of 10 items failed (simulated).";
      events.push({ at: ended, actor: "system:consumer", action: "run.completed", metadata: { from: "running", to: "completed", attempt: 1, outcome: "partially_succeeded", message } });
      return { run: completed("partially_succeeded", null, message, { attempts: attempt("partially_succeeded"), thresholds }, progressOf(10, 10, 1)), events };
    }
    case "failed": {
      const message = "Step 3 of 10 failed (simulated).";
      events.push({ at: ended, actor: "system:consumer", action: "run.completed", metadata: { from: "running", to: "completed", attempt: 1, outcome: "failed", message } });
      return { run: completed("failed", "handler.failed", message, { attempts: attempt("failed"), thresholds }, progressOf(10, 2)), events };
    }
    case "failed_xss": {
      const lastError = { attempt: 1, message: XSS_MESSAGE, reasonCode: "handler.error" as const, at: ended };
      events.push({ at: ended, actor: "system:consumer", action: "run.failed", metadata: { from: "running", to: "completed", attempt: 1, reason: "handler.error", error: XSS_MESSAGE, retryable: false } });
      return { run: completed("failed", "handler.error", `Attempt 1 of ${POLICY.maxAttempts} failed: ${XSS_MESSAGE}`, { attempts: attempt("handler.error", XSS_MESSAGE), lastError, thresholds }, progressOf(10, 3)), events };
    }
    case "cancelled": {
      const asked = ended - 1_500;
      events.push({ at: asked, actor: CANCELLER, action: "run.cancel_requested", metadata: { from: "running", to: "running", attempt: 1, reason: "wrong input" } });
      events.push({ at: ended, actor: CANCELLER, action: "run.cancelled", metadata: { from: "running", to: "completed", attempt: 1, stopped: "stopped", detectedBy: "system:consumer" } });
      return {
        run: {
          ...completed("cancelled", "operator.cancelled", "Cancelled by operator@demo.test: wrong input", { attempts: attempt("cancelled (stopped)"), thresholds, cancelReason: "wrong input" }, progressOf(10, 6)),
          cancel_requested_at: asked,
          cancel_requested_by: CANCELLER,
        },
        events,
      };
    }
    case "failed_reconciled": {
      // The sweep found it running with its heartbeat long overdue, after its tracker could not act.
      const heartbeat = started + 3_000;
      const detectedAt = heartbeat + POLICY.staleRunningAfterMs + 60_000;
      const evidence = { lastHeartbeatAt: heartbeat, deadlineAt: heartbeat + POLICY.staleRunningAfterMs, observedAt: detectedAt };
      const lastError = { attempt: 1, message: "connection reset by upstream", at: heartbeat };
      events.push({
        at: detectedAt,
        actor: "system:sweep",
        action: "run.reconciled",
        metadata: { from: "running", to: "completed", evidence, lastError: lastError.message },
      });
      return {
        run: {
          ...completed("failed", "lifecycle.stale_running", explainReason("lifecycle.stale_running").whatHappened, {
            attempts: attempt("lifecycle.stale_running"),
            lastError,
            detectedBy: "sweep",
            evidence,
            thresholds,
          }, progressOf(10, 5)),
          completed_at: detectedAt,
          last_heartbeat_at: heartbeat,
          reconciled_by: "sweep",
          updated_at: detectedAt,
        },
        events,
      };
    }
  }
}

/**
 * SQL that makes the seeded live runs fresh again as of the moment it runs,
 * the way the system itself would: the running run's heartbeat is flushed now
 * (and its deadline moves with it), the queued run's stale-queued deadline is
 * what it was when seeded, 5 s after its creation, measured from now. For a
 * test that must see them fresh on a machine slower than their freshness
 * window (STALE_AFTER_MS for the running one).
 */
export function freshenLiveRunsSql(ids: { running?: string; queued?: string }): string {
  const lines: string[] = [];
  if (ids.running) {
    lines.push(
      `UPDATE operation_runs SET last_heartbeat_at = (${SQL_NOW}), deadline_at = (${SQL_NOW}) + ${POLICY.staleRunningAfterMs}, updated_at = (${SQL_NOW}) WHERE id = ${sqlString(ids.running)};`,
    );
  }
  if (ids.queued) {
    lines.push(`UPDATE operation_runs SET deadline_at = (${SQL_NOW}) + ${POLICY.staleQueuedAfterMs - 5_000} WHERE id = ${sqlString(ids.queued)};`);
  }
  return lines.join("\n") + "\n";
}

/** Runs of `kinds` in `workspaceId` with their audit events, as SQL, and their ids. */
export function runsSql<K extends RunKind>(workspaceId: string, kinds: readonly K[]): { runs: Record<K, SeededRun>; sql: string } {
  const now = Date.now();
  const lines: string[] = [];
  const runs = {} as Record<K, SeededRun>;
  for (const kind of kinds) {
    const { run, events } = runOf(workspaceId, kind, now);
    lines.push(insert("operation_runs", run));
    const seeded: SeededRun = { id: String(run.id), events: [] };
    for (const e of events) {
      const id = `evt_${ulid(e.at)}`;
      seeded.events.push({ id, action: e.action });
      lines.push(
        insert("audit_events", {
          id,
          workspace_id: workspaceId,
          actor: e.actor,
          action: e.action,
          subject_type: "run",
          subject_id: String(run.id),
          metadata: JSON.stringify(e.metadata),
          created_at: e.at,
        }),
      );
    }
    runs[kind] = seeded;
  }
  return { runs, sql: lines.join("\n") + "\n" };
}

/**
 * One webhook endpoint of `workspaceId` and a delivery of each state in its
 * log, for the completed runs `runIds` (oldest first: delivered, retrying with
 * two failed tries, given up), shaped as src/webhooks/deliver.ts leaves them.
 */
export function webhooksSql(workspaceId: string, runIds: [string, string, string]): { endpointId: string; url: string; sql: string } {
  const now = Date.now();
  const endpointId = `whe_${ulid(now - 3_600_000)}`;
  const url = "https://hooks.example.com/oplife/completed";
  const lines = [
    insert("webhook_endpoints", {
      id: endpointId,
      workspace_id: workspaceId,
      url,
      description: "Billing sync",
      event_types: JSON.stringify(["run.completed"]),
      secret: `whsec_${randomBytes(32).toString("base64")}`,
      created_at: now - 3_600_000,
    }),
  ];
  const failedTry = (attempt: number, at: number) => ({ attempt, at, statusCode: 503, error: "Answered HTTP 503.", excerpt: "upstream unavailable" });
  const deliveries = [
    { status: "delivered", attempts: 1, next: null, code: 200, error: null, tries: [{ attempt: 1, at: now - 1_800_000, statusCode: 200, error: null, excerpt: null }] },
    { status: "pending", attempts: 2, next: now + 120_000, code: 503, error: "Answered HTTP 503.", tries: [failedTry(1, now - 600_000), failedTry(2, now - 60_000)] },
    {
      status: "failed",
      attempts: 2,
      next: null,
      code: null,
      error: "No answer within 10000 ms.",
      tries: [failedTry(1, now - 300_000), { attempt: 2, at: now - 30_000, statusCode: null, error: "No answer within 10000 ms.", excerpt: null }],
    },
  ] as const;
  deliveries.forEach((d, i) => {
    const created = now - 1_800_000 + i * 60_000;
    lines.push(
      insert("webhook_deliveries", {
        message_id: `msg_${ulid(created)}`,
        endpoint_id: endpointId,
        workspace_id: workspaceId,
        run_id: runIds[i]!,
        event_type: "run.completed",
        payload: JSON.stringify({ type: "run.completed", timestamp: new Date(created).toISOString(), data: { runId: runIds[i] } }),
        status: d.status,
        attempts: d.attempts,
        next_attempt_at: d.next,
        last_status_code: d.code,
        last_error: d.error,
        attempt_log: JSON.stringify(d.tries),
        created_at: created,
        updated_at: now,
      }),
    );
  });
  return { endpointId, url, sql: lines.join("\n") + "\n" };
}
