/**
 * Running one attempt: the handler gets an AbortSignal that fires at the
 * attempt's timeout or when its tracker fences it, and the attempt heartbeats
 * automatically (isolate liveness) while it is alive, carrying progress.
 */
import type { LifecyclePolicy, Progress } from "../lifecycle";
import { NonRetryableError, type OperationResult, type PreparedInput } from "../operations";
import type { HeartbeatReply, RunTicket } from "../tracker";
import { log } from "../log";

export type AttemptEnd =
  | { kind: "result"; result: OperationResult }
  | { kind: "error"; error: unknown; retryable: boolean }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "fenced"; refusal: string };

class AttemptTimeout extends Error {
  override name = "AttemptTimeout";
  constructor(readonly timeoutMs: number) {
    super(`The attempt exceeded its timeout of ${timeoutMs} ms.`);
  }
}

class AttemptFenced extends Error {
  override name = "AttemptFenced";
  constructor(readonly refusal: string) {
    super(`The attempt no longer holds the lease (${refusal}).`);
  }
}

export interface HeartbeatChannel {
  heartbeat(req: { attempt: number; progress?: Progress }): Promise<HeartbeatReply>;
}

export async function runAttempt(
  prepared: Extract<PreparedInput, { ok: true }>,
  ticket: RunTicket,
  channel: HeartbeatChannel,
  policy: Pick<LifecyclePolicy, "heartbeatIntervalMs">,
): Promise<AttemptEnd> {
  const controller = new AbortController();
  let progress: Progress = ticket.progress;
  let beating = false;
  let dead = false;
  const beat = async () => {
    if (dead || beating || controller.signal.aborted) return;
    beating = true;
    try {
      const reply = await channel.heartbeat({ attempt: ticket.attempt, progress });
      if (!reply.ok) controller.abort(new AttemptFenced(reply.refusal));
    } catch (error) {
      // The tracker is unreachable: keep working; if it stays so, the tracker
      // (or the sweep) declares the attempt lost, which is the honest outcome.
      log.warn("attempt.heartbeat_failed", { runId: ticket.runId, attempt: ticket.attempt, error });
    } finally {
      beating = false;
    }
  };
  const timer = setTimeout(() => controller.abort(new AttemptTimeout(prepared.timeoutMs)), prepared.timeoutMs);
  const interval = setInterval(() => void beat(), policy.heartbeatIntervalMs);
  // A handler that ignores its signal (or hangs) is still ended by this race.
  const aborted = new Promise<never>((_, reject) => {
    controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
  });
  try {
    const result = await Promise.race([
      prepared.run({
        runId: ticket.runId,
        workspaceId: ticket.workspaceId,
        attempt: ticket.attempt,
        maxAttempts: ticket.maxAttempts,
        signal: controller.signal,
        reportProgress: (p) => {
          progress = p;
        },
        faults: {
          stopHeartbeats: () => {
            dead = true;
          },
        },
      }),
      aborted,
    ]);
    return { kind: "result", result: result.progress ? result : { ...result, progress } };
  } catch (error) {
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof AttemptTimeout) return { kind: "timeout", timeoutMs: reason.timeoutMs };
    if (reason instanceof AttemptFenced) return { kind: "fenced", refusal: reason.refusal };
    return { kind: "error", error, retryable: !(error instanceof NonRetryableError) };
  } finally {
    clearTimeout(timer);
    clearInterval(interval);
  }
}
