/**
 * The D1 schema (contract section 1). drizzle-kit generates `migrations/`
 * from this file; wrangler applies them. CHECK constraints keep `status`,
 * `outcome` and `reconciled_by` to the contract's values even against a
 * buggy writer.
 */
import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

export const workspaces = sqliteTable("workspaces", {
  id: text("id").primaryKey(),
  slug: text("slug").notNull().unique(),
  name: text("name").notNull(),
  createdAt: integer("created_at").notNull(),
});

export const users = sqliteTable("users", {
  id: text("id").primaryKey(),
  email: text("email").notNull().unique(),
  name: text("name").notNull(),
  createdAt: integer("created_at").notNull(),
});

export const MEMBERSHIP_ROLES = ["owner", "operator", "viewer"] as const;
export type MembershipRole = (typeof MEMBERSHIP_ROLES)[number];

export const memberships = sqliteTable(
  "memberships",
  {
    workspaceId: text("workspace_id").notNull().references(() => workspaces.id),
    userId: text("user_id").notNull().references(() => users.id),
    role: text("role", { enum: MEMBERSHIP_ROLES }).notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    uniqueIndex("memberships_workspace_user_uq").on(t.workspaceId, t.userId),
    index("memberships_user_idx").on(t.userId),
    check("memberships_role_ck", sql`${t.role} IN ('owner', 'operator', 'viewer')`),
  ],
);

export const apiTokens = sqliteTable(
  "api_tokens",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull().references(() => workspaces.id),
    name: text("name").notNull(),
    /** SHA-256 of the token, hex. The token itself is never stored. */
    tokenHash: text("token_hash").notNull(),
    createdAt: integer("created_at").notNull(),
    lastUsedAt: integer("last_used_at"),
    revokedAt: integer("revoked_at"),
  },
  (t) => [
    uniqueIndex("api_tokens_hash_uq").on(t.tokenHash),
    index("api_tokens_workspace_idx").on(t.workspaceId),
    // `token revoke --name N` and the admin name one live token: names are unique among a
    // workspace's live tokens, and a revoked token's name may be used again (rotation).
    uniqueIndex("api_tokens_workspace_name_live_uq").on(t.workspaceId, t.name).where(sql`${t.revokedAt} IS NULL`),
  ],
);

/**
 * Dev sign-in sessions (local only). The signed cookie names a row here, so
 * sign-out ends the session on the server: a replayed cookie finds
 * `ended_at` set and is refused, where a cookie alone would live until it
 * expired. Times in ms since the epoch.
 */
export const adminSessions = sqliteTable(
  "admin_sessions",
  {
    id: text("id").primaryKey(),
    userId: text("user_id").notNull().references(() => users.id),
    createdAt: integer("created_at").notNull(),
    expiresAt: integer("expires_at").notNull(),
    endedAt: integer("ended_at"),
  },
  (t) => [index("admin_sessions_user_idx").on(t.userId)],
);

/**
 * Runs. The table is `WITHOUT ROWID` on `id` (migration 0013, hand-written:
 * drizzle's sqlite-core has no option for it), so an insert writes the row
 * and its secondary entries, with no rowid key entry beside them. Every
 * secondary index ends in `id`, so its entries point at the row by that.
 */
export const operationRuns = sqliteTable(
  "operation_runs",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull().references(() => workspaces.id),
    type: text("type").notNull(),
    status: text("status", { enum: ["queued", "running", "completed"] }).notNull(),
    outcome: text("outcome", { enum: ["pending", "succeeded", "partially_succeeded", "failed", "cancelled"] }).notNull(),
    attempt: integer("attempt").notNull(),
    maxAttempts: integer("max_attempts").notNull(),
    input: text("input").notNull(),
    progress: text("progress").notNull(),
    createdAt: integer("created_at").notNull(),
    startedAt: integer("started_at"),
    completedAt: integer("completed_at"),
    lastHeartbeatAt: integer("last_heartbeat_at"),
    deadlineAt: integer("deadline_at"),
    reasonCode: text("reason_code"),
    failureMessage: text("failure_message"),
    diagnostics: text("diagnostics").notNull(),
    reconciledBy: text("reconciled_by", { enum: ["tracker_alarm", "sweep", "dead_letter"] }),
    idempotencyKey: text("idempotency_key"),
    initiator: text("initiator").notNull(),
    updatedAt: integer("updated_at").notNull(),
    /** The run this one re-drives (contract section 7: retry as a new run); NULL otherwise. */
    retryOf: text("retry_of"),
    /** JSON the handler returned on success or partial success (at most MAX_OUTPUT_BYTES); NULL otherwise. */
    output: text("output"),
    /** When an operator asked to cancel the run (epoch ms), and who (an audit actor); contract section 7. */
    cancelRequestedAt: integer("cancel_requested_at"),
    cancelRequestedBy: text("cancel_requested_by"),
  },
  (t) => [
    // Enumerations are spelled as `=` comparisons, not `IN (…)` lists: SQLite tests an IN list of
    // three or more constants against a temporary b-tree it builds for the statement, and D1 bills
    // each test as a row read, on every statement that sets the column (each transition's UPDATE:
    // 3 of the sweep's 4 rows read per failed run, migration 0013; test/runs/table-shape.cost.test.ts).
    check("operation_runs_status_ck", sql`${t.status} = 'queued' OR ${t.status} = 'running' OR ${t.status} = 'completed'`),
    check(
      "operation_runs_outcome_ck",
      sql`${t.outcome} = 'pending' OR ${t.outcome} = 'succeeded' OR ${t.outcome} = 'partially_succeeded' OR ${t.outcome} = 'failed' OR ${t.outcome} = 'cancelled'`,
    ),
    // A cancel request names who asked, and a cancelled run always had one.
    check("operation_runs_cancel_requested_ck", sql`(${t.cancelRequestedAt} IS NULL) = (${t.cancelRequestedBy} IS NULL)`),
    check("operation_runs_cancelled_ck", sql`${t.outcome} <> 'cancelled' OR ${t.cancelRequestedAt} IS NOT NULL`),
    // Pending exactly while not completed: a completed run always has its outcome.
    check("operation_runs_outcome_status_ck", sql`(${t.status} = 'completed') = (${t.outcome} <> 'pending')`),
    check(
      "operation_runs_reconciled_by_ck",
      sql`${t.reconciledBy} IS NULL OR ${t.reconciledBy} = 'tracker_alarm' OR ${t.reconciledBy} = 'sweep' OR ${t.reconciledBy} = 'dead_letter'`,
    ),
    // A terminal run has no deadline; a live one always has one (the sweep relies on it).
    check("operation_runs_deadline_ck", sql`(${t.status} = 'completed') = (${t.deadlineAt} IS NULL)`),
    check("operation_runs_attempt_ck", sql`${t.attempt} >= 0 AND ${t.attempt} <= ${t.maxAttempts}`),
    // The sweep: overdue non-terminal runs, oldest deadline first, by keyset on
    // (deadline_at, id) so a page it could not resolve is never read twice in one
    // sweep, without a sort. Partial, so it holds only live runs and its size
    // never grows with history.
    index("operation_runs_deadline_live_idx").on(t.deadlineAt, t.id).where(sql`${t.status} <> 'completed'`),
    // Keyset listing per workspace, newest first (ids are time-ordered).
    index("operation_runs_workspace_id_idx").on(t.workspaceId, t.id),
    index("operation_runs_workspace_type_id_idx").on(t.workspaceId, t.type, t.id),
    // Display filters read only runs of their outcome (both "Failed" kinds: failed runs only). Live
    // runs are `outcome = 'pending'` (a CHECK ties it to status), so this index also serves the
    // status filters and the live tiles: a separate (workspace, status, id) index cost one more
    // row written at acceptance and at every status change (migration 0009).
    index("operation_runs_workspace_outcome_id_idx").on(t.workspaceId, t.outcome, t.id),
    // (No index for the failure tiles: they read hourly counters, src/runs/failure-counts.ts.)
    // Retention walks the primary key (time-ordered ids), so no index by completion time.
    // Partial: a run without a key has no entry to write (most runs).
    uniqueIndex("operation_runs_idempotency_uq").on(t.workspaceId, t.idempotencyKey).where(sql`${t.idempotencyKey} IS NOT NULL`),
    // A run's retries ("retried by" on its page and JSON): partial, so only retries are indexed.
    index("operation_runs_retry_of_idx").on(t.retryOf, t.id).where(sql`${t.retryOf} IS NOT NULL`),
  ],
);

/**
 * The audit trail. The table is `WITHOUT ROWID` (migration 0012, hand-written:
 * drizzle's sqlite-core has no option for it) and clustered on its primary key
 * (subject_type, subject_id, id), so a subject's timeline in order is the
 * table itself: an event writes 2 rows (its row and its workspace entry), not
 * 4 (row, rowid key entry, subject entry, workspace entry). Look an event up
 * by (workspace_id, id) or by its whole key; `id` alone is no index.
 */
export const auditEvents = sqliteTable(
  "audit_events",
  {
    id: text("id").notNull(),
    workspaceId: text("workspace_id").notNull().references(() => workspaces.id),
    /** `user:…`, `api-token:…`, `system:tracker`, `system:sweep`, `system:dead-letter`, `system:consumer`. */
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    subjectType: text("subject_type").notNull(),
    subjectId: text("subject_id").notNull(),
    /** JSON object, redacted before it is written. */
    metadata: text("metadata").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    // One subject's timeline in order (ids are time-ordered): the clustered key.
    primaryKey({ columns: [t.subjectType, t.subjectId, t.id] }),
    // A workspace's events newest first, keyset-paginated; one event by (workspace, id).
    index("audit_events_workspace_id_idx").on(t.workspaceId, t.id),
    // Retention of events about no run (admin actions, malformed messages), oldest first. Partial:
    // a run's event writes no entry here (its events go with the run).
    index("audit_events_other_id_idx").on(t.id).where(sql`${t.subjectType} <> 'run'`),
  ],
);

/**
 * Failed runs per workspace and creation hour, kept by the transition that
 * fails a run (in its batch, guarded like its audit event), so the admin's
 * "failures, 24 h" tiles read at most 25 rows whatever the day's failure
 * volume (src/runs/failure-counts.ts). `hour_start`: ms since the epoch, at the
 * top of the hour the run was created in. `reconciled`: those the lifecycle
 * machinery decided (a `lifecycle.*` reason code).
 */
export const runFailureCounts = sqliteTable(
  "run_failure_counts",
  {
    workspaceId: text("workspace_id").notNull(),
    hourStart: integer("hour_start").notNull(),
    failed: integer("failed").notNull(),
    reconciled: integer("reconciled").notNull(),
  },
  (t) => [primaryKey({ columns: [t.workspaceId, t.hourStart] })],
);

export type ApiTokenRow = typeof apiTokens.$inferSelect;
export type OperationRunRow = typeof operationRuns.$inferSelect;
export type AuditEventRow = typeof auditEvents.$inferSelect;

/**
 * Completion webhooks (contract section 8): where a workspace wants to hear
 * that its runs ended. `secret` is the Standard Webhooks signing secret
 * (`whsec_` + base64): it must be readable to sign with, so it is stored as
 * is, shown to the owner once when created, and never listed.
 * `event_types`: a JSON array of event types this endpoint receives; NULL for all.
 */
export const webhookEndpoints = sqliteTable(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    workspaceId: text("workspace_id").notNull().references(() => workspaces.id),
    url: text("url").notNull(),
    description: text("description"),
    eventTypes: text("event_types"),
    secret: text("secret").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  // The outbox insert of every terminal transition reads a workspace's endpoints by this index.
  (t) => [index("webhook_endpoints_workspace_idx").on(t.workspaceId, t.id)],
);

export const WEBHOOK_DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;
export type WebhookDeliveryStatus = (typeof WEBHOOK_DELIVERY_STATUSES)[number];

/**
 * The webhook outbox and its delivery log: one row per (event, endpoint),
 * inserted in the same D1 batch as the run's terminal transition, so an event
 * exists exactly when the transition does. `message_id` is the Standard
 * Webhooks `webhook-id`, the same on every try. `attempt_log` is a JSON array
 * of the latest tries ({attempt, at, statusCode, error, excerpt}); times in ms.
 * Deleting an endpoint deletes its log.
 */
export const webhookDeliveries = sqliteTable(
  "webhook_deliveries",
  {
    messageId: text("message_id").notNull(),
    endpointId: text("endpoint_id")
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: "cascade" }),
    workspaceId: text("workspace_id").notNull(),
    runId: text("run_id").notNull(),
    eventType: text("event_type").notNull(),
    payload: text("payload").notNull(),
    status: text("status", { enum: WEBHOOK_DELIVERY_STATUSES }).notNull(),
    attempts: integer("attempts").notNull(),
    nextAttemptAt: integer("next_attempt_at"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    attemptLog: text("attempt_log").notNull(),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.messageId, t.endpointId] }),
    // Spelled with `=`, not IN: an IN list of 3+ constants costs D1 a row read per insert and update (migration 0014).
    check("webhook_deliveries_status_ck", sql`${t.status} = 'pending' OR ${t.status} = 'delivered' OR ${t.status} = 'failed'`),
    // A pending delivery always has its next try's time; a settled one none.
    check("webhook_deliveries_next_ck", sql`(${t.status} = 'pending') = (${t.nextAttemptAt} IS NOT NULL)`),
    // The admin's delivery log: an endpoint's deliveries, newest first (message ids are time-ordered).
    index("webhook_deliveries_endpoint_idx").on(t.endpointId, t.messageId),
    // The cron's re-drive of lost sends: only pending rows, by when they are due.
    index("webhook_deliveries_pending_idx").on(t.nextAttemptAt).where(sql`${t.status} = 'pending'`),
    // Retention: settled deliveries by age.
    index("webhook_deliveries_created_idx").on(t.createdAt),
  ],
);

export type WebhookEndpointRow = typeof webhookEndpoints.$inferSelect;
export type WebhookDeliveryRow = typeof webhookDeliveries.$inferSelect;
