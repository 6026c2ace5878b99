/** The run service and display state as every entry point uses them: the registry's policies and the system settings. */
import { DEFAULT_SETTINGS, displayState, type DisplayInput, type DisplayState } from "./lifecycle";
import { getOperation, policyFor } from "./operations";
import { RunService } from "./runs";

/** `webhooks`: the queue a terminal transition announces its webhook deliveries on (see RunServiceOptions). */
export function runServiceFor(db: D1Database, webhooks?: Queue<unknown>): RunService {
  return new RunService(db, { policyFor, settings: DEFAULT_SETTINGS, ...(webhooks ? { webhooks } : {}) });
}

/**
 * A run's display state at `now`; a type no longer registered has no policy
 * to vouch for liveness. The run's own thresholds (diagnostics) win over the
 * type's current policy: a deploy may have changed the policy since.
 */
export function displayStateOf(
  run: DisplayInput & { type: string; diagnostics?: { thresholds?: Record<string, number> } },
  now: number,
): DisplayState {
  const own = run.diagnostics?.thresholds?.staleQueuedAfterMs;
  return displayState(
    { ...run, staleQueuedAfterMs: typeof own === "number" ? own : (run.staleQueuedAfterMs ?? null) },
    getOperation(run.type)?.policy ?? null,
    DEFAULT_SETTINGS,
    now,
  );
}
