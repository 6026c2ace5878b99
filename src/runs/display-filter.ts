/**
 * The contract's display states (section 6) as SQL, so the API and admin can
 * filter by them in the query (bounded by the listing index) instead of
 * fetching and discarding rows. Mirrors `displayState` in the core; the tests
 * check both agree on every state.
 */
import { REASON_CODES, reasonFamily, type DisplayStateKind, type LifecyclePolicy, type LifecycleSettings } from "../lifecycle";

export interface SqlFragment {
  sql: string;
  params: unknown[];
}

const LIFECYCLE_CODES = REASON_CODES.filter((c) => reasonFamily(c) === "lifecycle");
const lifecycleList = LIFECYCLE_CODES.map((c) => `'${c}'`).join(", ");

/** The condition selecting runs in `kind` at `now`, given the registered policies. */
export function displayStateCondition(
  kind: DisplayStateKind,
  policies: Readonly<Record<string, Pick<LifecyclePolicy, "heartbeatTimeoutMs">>>,
  settings: Pick<LifecycleSettings, "heartbeatFlushIntervalMs">,
  now: number,
): SqlFragment {
  switch (kind) {
    case "queued":
      return { sql: "outcome = 'pending' AND status = 'queued' AND attempt = 0 AND deadline_at >= ?", params: [now] };
    case "retrying":
      return { sql: "outcome = 'pending' AND status = 'queued' AND attempt > 0 AND deadline_at >= ?", params: [now] };
    case "queued_overdue":
      return { sql: "outcome = 'pending' AND status = 'queued' AND deadline_at < ?", params: [now] };
    case "running":
    case "running_stale": {
      // Silent-for threshold per type; a type no longer registered is never fresh.
      const entries = Object.entries(policies);
      const last = "COALESCE(last_heartbeat_at, started_at, created_at)";
      if (entries.length === 0) {
        return kind === "running" ? { sql: "0", params: [] } : { sql: "outcome = 'pending' AND status = 'running' AND cancel_requested_at IS NULL", params: [] };
      }
      const cases = entries.map(() => "WHEN ? THEN ?").join(" ");
      const caseParams = entries.flatMap(([type, p]) => [type, p.heartbeatTimeoutMs + settings.heartbeatFlushIntervalMs]);
      const known = entries.map(() => "?").join(", ");
      // `+type`: the listing must range over the live runs (workspace, outcome 'pending', id), never over every run of a known type.
      const fresh = `+type IN (${known}) AND ? - ${last} <= CASE type ${cases} END`;
      const params = [...entries.map(([t]) => t), now, ...caseParams];
      // A run whose cancel was requested is Cancelling, fresh or not.
      return kind === "running"
        ? { sql: `outcome = 'pending' AND status = 'running' AND cancel_requested_at IS NULL AND ${fresh}`, params }
        : { sql: `outcome = 'pending' AND status = 'running' AND cancel_requested_at IS NULL AND NOT (${fresh})`, params };
    }
    case "cancelling":
      return { sql: "outcome = 'pending' AND status = 'running' AND cancel_requested_at IS NOT NULL", params: [] };
    case "cancelled":
      return { sql: "outcome = 'cancelled'", params: [] };
    case "succeeded":
      return { sql: "outcome = 'succeeded'", params: [] };
    case "partially_succeeded":
      return { sql: "outcome = 'partially_succeeded'", params: [] };
    // `outcome = …` first: the (workspace_id, outcome, id) index bounds both kinds by the failures.
    case "failed":
      return { sql: `outcome = 'failed' AND (reason_code IS NULL OR reason_code NOT IN (${lifecycleList}))`, params: [] };
    case "failed_reconciled":
      return { sql: `outcome = 'failed' AND reason_code IN (${lifecycleList})`, params: [] };
  }
}
