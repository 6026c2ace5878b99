/**
 * Running one attempt: the handler gets an AbortSignal that fires at the
 * attempt's timeout, when its tracker fences it, or when an operator cancels
 * the run (the tracker's heartbeat answer says so), and the attempt heartbeats
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
  /** An operator cancelled the run; the attempt stopped (contract section 7). */
  | { kind: "cancelled" }
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

/** The AbortSignal's reason when an operator cancelled the run (the tracker said so in a heartbeat answer). */
export class AttemptCancelled extends Error {
  override name = "AttemptCancelled";
  constructor() {
    super("The run was cancelled by an operator.");
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

/**
 * `controller` is the handler's signal: it fires on every stop. `hard` fires
 * only on the stops that end the attempt at once (its timeout, a fence); a
 * cancel fires the handler's signal alone, so the handler may stop in its own
 * way (clean up, return) within the cancel grace, which the tracker enforces.
 */
export function startHeartbeats(
  ticket: RunTicket,
  channel: HeartbeatChannel,
  policy: Pick<LifecyclePolicy, "heartbeatIntervalMs">,
): Heartbeats & { controller: AbortController; hard: AbortController } {
  const controller = new AbortController();
  const hard = new AbortController();
  let beating = false;
  // Not the signal: a timed-out attempt still heartbeats while its failure is reported.
  let fenced = false;
  const beats = {
    controller,
    hard,
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
        const reason = new AttemptFenced(reply.refusal);
        hard.abort(reason);
        controller.abort(reason);
      } else if (reply.cancelRequested && !controller.signal.aborted) {
        // Cancelled: the handler stops; heartbeats go on until the `stopped` report is held.
        controller.abort(new AttemptCancelled());
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

/**
 * Run the handler under the attempt's timeout and its heartbeats' fencing
 * signal. A cancel fires the handler's signal and leaves the handler to stop
 * (contract section 7: the run ends when the attempt stops, or after the
 * grace); a timeout or a fence ends the attempt at once.
 */
export async function runAttempt(
  prepared: Extract<PreparedInput, { ok: true }>,
  ticket: RunTicket,
  beats: Heartbeats & { controller: AbortController; hard: AbortController },
  env: Env,
): Promise<AttemptEnd> {
  const { controller, hard } = beats;
  const timer = setTimeout(() => {
    const reason = new AttemptTimeout(prepared.timeoutMs);
    hard.abort(reason);
    controller.abort(reason);
  }, prepared.timeoutMs);
  // A handler that ignores its signal (or hangs) is still ended by this race.
  const aborted = new Promise<never>((_, reject) => {
    if (hard.signal.aborted) reject(hard.signal.reason);
    hard.signal.addEventListener("abort", () => reject(hard.signal.reason), { once: true });
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
    // Stopped after a cancel: whatever it returned, the run's tracker ends the run cancelled.
    if (controller.signal.reason instanceof AttemptCancelled) return { kind: "cancelled" };
    return { kind: "result", result: result.progress ? result : { ...result, progress: beats.progress } };
  } catch (error) {
    if (isCrash(error)) return { kind: "crash", error };
    const reason: unknown = hard.signal.aborted ? hard.signal.reason : controller.signal.aborted ? controller.signal.reason : error;
    if (reason instanceof AttemptTimeout) return { kind: "timeout", timeoutMs: reason.timeoutMs };
    if (reason instanceof AttemptFenced) return { kind: "fenced", refusal: reason.refusal };
    if (reason instanceof AttemptCancelled) return { kind: "cancelled" };
    const retryAfterMs = error instanceof RetryableError ? error.retryAfterMs : undefined;
    return { kind: "error", error, retryable: !(error instanceof NonRetryableError), ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
  } finally {
    clearTimeout(timer);
  }
}
