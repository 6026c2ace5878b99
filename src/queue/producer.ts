/**
 * Accepting a run: write it (queued), tell its tracker, send the message. If
 * the message never reaches the queue, the run still converges: the tracker's
 * queued deadline reconciles it as `lifecycle.stale_queued` (and the sweep
 * backs that up if even the tracker call failed).
 */
import { policyFor } from "../operations";
import type { CreateAnswer, CreateRunInput, RunService } from "../runs";
import { trackerFor } from "../tracker";
import { log } from "../log";
import { operationMessageFor } from "./messages";
import { producerFor } from "./routing";

export interface EnqueueResult {
  answer: CreateAnswer;
  /** False when the message could not be sent (the run will converge as stale_queued). */
  sent: boolean;
}

export async function enqueueRun(env: Env, service: RunService, req: CreateRunInput): Promise<EnqueueResult> {
  const answer = await service.create(req);
  if (!answer.ok || !answer.created) return { answer, sent: true };
  const run = answer.run;
  try {
    await trackerFor(env, run.id).track({ runId: run.id, type: run.type, createdAt: run.createdAt });
  } catch (error) {
    // The sweep finds the run by its D1 deadline; the tracker is an accelerator, not the record.
    log.error("producer.track_failed", { runId: run.id, error });
  }
  try {
    await producerFor(env, policyFor(run.type).queue).send(operationMessageFor(run), { contentType: "json" });
    return { answer, sent: true };
  } catch (error) {
    log.error("producer.send_failed", {
      runId: run.id,
      error,
      consequence: `run converges as lifecycle.stale_queued within ${policyFor(run.type).staleQueuedAfterMs} ms`,
    });
    return { answer, sent: false };
  }
}
