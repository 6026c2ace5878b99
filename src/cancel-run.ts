/**
 * Cancel a run (contract section 7), as the API and the admin both do it: the
 * run is looked up in the caller's workspace (another workspace's run does not
 * exist), and the run's tracker takes the cancel, in its order of calls, so a
 * cancel racing an attempt's report, the alarm or the sweep ends as exactly one
 * terminal state with one terminal event (every write is the run service's
 * compare-and-set). Callers check the caller's role first.
 */
import { errorMessage } from "./lifecycle";
import { log } from "./log";
import { runServiceFor } from "./run-service";
import type { RunRecord } from "./runs";
import { trackerFor, type CancelRequest } from "./tracker";

export interface CancelRunRequest {
  workspaceId: string;
  runId: string;
  /** Who cancels: `user:<email>` (admin) or `api-token:<name>` (API). */
  actor: CancelRequest["actor"];
  /** Their user or token id, kept in the audit event's metadata. */
  actorId?: string;
  /** Why, in the operator's words (kept in the audit events; at most MAX_CANCEL_REASON_LENGTH characters). */
  reason?: string | null;
}

/**
 * - `cancelled`: the run was queued and ended `cancelled` now.
 * - `cancelling`: the run is running; its attempt is being stopped (`already`:
 *   an earlier cancel asked for it, nothing new was written).
 * - `terminal`: the run had ended; nothing changed.
 * - `not_found`: no such run in this workspace.
 * - `unavailable`: the run's tracker or D1 could not take the cancel now; nothing changed.
 */
export type CancelRunAnswer =
  | { kind: "cancelled"; run: RunRecord }
  | { kind: "cancelling"; run: RunRecord; already: boolean }
  | { kind: "terminal"; run: RunRecord }
  | { kind: "not_found" }
  | { kind: "unavailable" };

export async function cancelRun(env: Env, req: CancelRunRequest): Promise<CancelRunAnswer> {
  const service = runServiceFor(env.DB);
  const before = await service.get(req.workspaceId, req.runId);
  if (!before) return { kind: "not_found" };
  // Terminal is forever: answered from D1 without asking the tracker.
  if (before.status === "completed") return { kind: "terminal", run: before };
  let answer;
  try {
    answer = await trackerFor(env, req.runId).cancel({
      runId: req.runId,
      actor: req.actor,
      reason: req.reason ?? null,
      ...(req.actorId !== undefined ? { actorId: req.actorId } : {}),
    });
  } catch (error) {
    log.error("cancel.unavailable", { runId: req.runId, workspaceId: req.workspaceId, error: errorMessage(error) });
    return { kind: "unavailable" };
  }
  if (answer.result === "unavailable") return { kind: "unavailable" };
  const run = await service.get(req.workspaceId, req.runId);
  if (!run || answer.result === "not_found") return { kind: "not_found" };
  switch (answer.result) {
    case "cancelled":
      return { kind: "cancelled", run };
    case "cancelling":
      return { kind: "cancelling", run, already: answer.already };
    case "terminal":
      return { kind: "terminal", run };
  }
}
