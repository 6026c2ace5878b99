/**
 * Running one attempt: the handler gets an AbortSignal that fires at the
 * attempt's timeout or when its tracker fences it, and the attempt heartbeats
 * automatically (isolate liveness) while it is alive, carrying progress. The
 * heartbeats are owned by the caller (`startHeartbeats`), so they go on after
 * the handler returns, until the tracker holds the report: an attempt is alive
 * until its result is safe.
 */
import type { LifecyclePolicy, Progress } from "../lifecycle";
import { NonRetryableError, RetryableError, type OperationResult, type PreparedInput } from "../operations";
import type { HeartbeatReply, RunTicket, TrackerRefusal } from "../tracker";
import { log } from "../log";

export type AttemptEnd =
  | { kind: "result"; result: OperationResult }
  | { kind: "error"; error: unknown; retryable: boolean; retryAfterMs?: number }
  | { kind: "timeout"; timeoutMs: number }
  | { kind: "fenced"; refusal: TrackerRefusal }
  | { kind: "crash"; error: unknown };

class AttemptTimeout extends Error {
  override name = "AttemptTimeout";
  constructor(readonly timeoutMs: number) {
    super(`The attempt exceeded its timeout of ${timeoutMs} ms.`);
  }
}

class AttemptFenced extends Error {
  override name = "AttemptFenced";
  constructor(readonly refusal: TrackerRefusal) {
    super(`The attempt no longer holds the lease (${refusal}).`);
  }
}

export interface HeartbeatChannel {
  heartbeat(req: { attempt: number; progress?: Progress }): Promise<HeartbeatReply>;
}

/** An attempt's heartbeats: every `heartbeatIntervalMs` until stopped; a refusal aborts `signal`. */
export interface Heartbeats {
  readonly signal: AbortSignal;
  progress: Progress;
  stop(): void;
}

/**
 * Whether a handler's error stands for a crashed isolate, which ends the whole
 * consumer invocation (consumer.ts). Production recognises none, so no handler
 * of a deployed Worker can take its batch down; local and test builds install
 * their fault hook here (src/local/, through src/index.local.ts).
 */
let isCrash: (error: unknown) => boolean = () => false;

/** Local and test builds only: see `isCrash`. */
export function recogniseCrashes(test: (error: unknown) => boolean): void {
  isCrash = test;
}

export function startHeartbeats(ticket: RunTicket, channel: HeartbeatChannel, policy: Pick<LifecyclePolicy, "heartbeatIntervalMs">): Heartbeats & { controller: AbortController } {
  const controller = new AbortController();
  let beating = false;
  // Not the signal: a timed-out attempt still heartbeats while its failure is reported.
  let fenced = false;
  const beats = {
    controller,
    signal: controller.signal,
    progress: ticket.progress,
    stop: () => clearInterval(interval),
  };
  const beat = async () => {
    if (beating || fenced) return;
    beating = true;
    try {
      const reply = await channel.heartbeat({ attempt: ticket.attempt, progress: beats.progress });
      if (!reply.ok) {
        fenced = true;
        controller.abort(new AttemptFenced(reply.refusal));
      }
    } catch (error) {
      // The tracker is unreachable: keep working; if it stays so, the tracker
      // (or the sweep) declares the attempt lost, which is the honest outcome.
      log.warn("attempt.heartbeat_failed", { runId: ticket.runId, attempt: ticket.attempt, error });
    } finally {
      beating = false;
    }
  };
  const interval = setInterval(() => void beat(), policy.heartbeatIntervalMs);
  return beats;
}

/** Run the handler under the attempt's timeout and its heartbeats' fencing signal. */
export async function runAttempt(
  prepared: Extract<PreparedInput, { ok: true }>,
  ticket: RunTicket,
  beats: Heartbeats & { controller: AbortController },
  env: Env,
): Promise<AttemptEnd> {
  const controller = beats.controller;
  const timer = setTimeout(() => controller.abort(new AttemptTimeout(prepared.timeoutMs)), prepared.timeoutMs);
  // A handler that ignores its signal (or hangs) is still ended by this race.
  const aborted = new Promise<never>((_, reject) => {
    if (controller.signal.aborted) reject(controller.signal.reason);
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
        env,
        reportProgress: (p) => {
          beats.progress = p;
        },
      }),
      aborted,
    ]);
    return { kind: "result", result: result.progress ? result : { ...result, progress: beats.progress } };
  } catch (error) {
    if (isCrash(error)) return { kind: "crash", error };
    const reason: unknown = controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof AttemptTimeout) return { kind: "timeout", timeoutMs: reason.timeoutMs };
    if (reason instanceof AttemptFenced) return { kind: "fenced", refusal: reason.refusal };
    const retryAfterMs = error instanceof RetryableError ? error.retryAfterMs : undefined;
    return { kind: "error", error, retryable: !(error instanceof NonRetryableError), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  } finally {
    clearTimeout(timer);
  }
}
