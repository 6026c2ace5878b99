/**
 * Accepting a run (contract v2 section 4): write it (queued) in D1, then hand
 * it to its tracker, the run's outbox, which stores dispatch 1 and sends it —
 * and keeps re-trying the send from its alarm if the queue refuses. So a run is
 * answered 202 only once its tracker holds it.
 *
 * An idempotent replay hands the run to its tracker again (a no-op when the
 * tracker holds it), so a replay after a failed hand-over heals it. If the
 * tracker cannot be reached at all, the run stays queued in D1 and the caller
 * says so (503); the sweep adopts such an orphan at its deadline.
 */
import type { CreateAnswer, CreateRunInput, RunRecord, RunService } from "../runs";
import { trackerFor } from "../tracker";
import { log } from "../log";

export interface EnqueueResult {
  answer: CreateAnswer;
  /** False when the run's tracker could not be reached: nothing will dispatch it until a replay or the sweep. */
  tracked: boolean;
}

/** Hand a queued run to its tracker; false (logged) when the tracker cannot be reached. */
export async function handToTracker(env: Env, run: RunRecord): Promise<boolean> {
  if (run.status !== "queued") return true;
  try {
    await trackerFor(env, run.id).track({
      runId: run.id,
      workspaceId: run.workspaceId,
      type: run.type,
      maxAttempts: run.maxAttempts,
      attempt: run.attempt,
      dueAt: run.attempt === 0 ? run.createdAt : Date.now(),
      snapshot: run,
    });
    return true;
  } catch (error) {
    log.error("producer.track_failed", { runId: run.id, error });
    return false;
  }
}

export async function enqueueRun(env: Env, service: RunService, req: CreateRunInput): Promise<EnqueueResult> {
  const answer = await service.create(req);
  if (!answer.ok) return { answer, tracked: true };
  return { answer, tracked: await handToTracker(env, answer.run) };
}
