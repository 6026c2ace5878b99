/**
 * The operations queue consumer (contract v2 section 4: the queue is transport,
 * the consumer executes, the run's tracker schedules). Each message is settled
 * on its own — one bad message never fails the batch — and is acked once the
 * tracker has decided about it: its dispatch claimed and the attempt's report
 * held, or its claim refused. Retries are the tracker's new dispatches, never
 * this message's redelivery, so a slow batch holding the ack costs nothing.
 *
 * Runs twice safely: a redelivered message presents a dispatch the tracker has
 * already claimed (or an older one) and starts nothing.
 */
import { errorMessage } from "../lifecycle";
import { getOperation, policyFor, serializeOutput, type PreparedInput } from "../operations";
import { trackerFor, type AttemptReport, type ClaimAnswer, type ReportAnswer } from "../tracker";
import { log } from "../log";
import { runAttempt, startHeartbeats } from "./attempt";
import { dispatchOf, operationMessage } from "./messages";
import { recordMalformed } from "./malformed";

/** A crash (local and test builds: a simulated one, see attempt.ts `isCrash`) ends the invocation; carried out of `processMessage`. */
export class InvocationCrash extends Error {
  override name = "InvocationCrash";
  constructor(readonly runId: string, cause: unknown) {
    super(`The consumer invocation crashed while running ${runId}: ${errorMessage(cause)}`);
  }
}

/** How often the consumer retries handing a report to the tracker (a reset on deploy, a brief outage). */
export const REPORT_RETRIES = [250, 500, 1_000, 2_000, 4_000] as const;

// No timing-contract check here: a violated contract refuses new runs at acceptance
// (the API), while runs already accepted keep converging (contract section 5).
export async function handleOperationsBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  let crash: (error: InvocationCrash) => void = () => {};
  const crashed = new Promise<never>((_, reject) => {
    crash = reject;
  });
  const all = Promise.all(
    batch.messages.map(async (message) => {
      try {
        await processMessage(message, batch.queue, env);
      } catch (error) {
        if (error instanceof InvocationCrash) {
          crash(error);
          return;
        }
        // Infrastructure failed (D1 or the tracker unreachable) before the tracker
        // decided anything: let the queue deliver this message again.
        log.error("consumer.message_failed", {
          queue: batch.queue,
          messageId: message.id,
          runId: runIdOf(message.body),
          deliveries: message.attempts,
          error,
        });
        message.retry();
      }
    }),
  );
  // A crash ends the whole invocation at once, as on the platform: unacked
  // messages are redelivered and the siblings' attempts stop heartbeating.
  await Promise.race([all, crashed]);
}

function runIdOf(body: unknown): string | null {
  const parsed = operationMessage.safeParse(body);
  return parsed.success ? parsed.data.runId : null;
}

export async function processMessage(message: Message<unknown>, queue: string, env: Env): Promise<void> {
  const parsed = operationMessage.safeParse(message.body);
  if (!parsed.success) {
    await recordMalformed(env, queue, message, parsed.error, "system:consumer");
    message.ack();
    return;
  }
  const { runId } = parsed.data;
  const dispatch = dispatchOf(parsed.data);
  const tracker = trackerFor(env, runId);
  const claim: ClaimAnswer = await tracker.claim({ runId, dispatch });
  if (!claim.ok) {
    // terminal, duplicate (this dispatch started its attempt already), stale_dispatch
    // (a newer dispatch exists), exhausted or not found: nothing to run.
    log.info("consumer.claim_refused", { runId, dispatch, refusal: claim.refusal, messageId: message.id, deliveries: message.attempts });
    message.ack();
    return;
  }
  const ticket = claim.run;
  const attempt = ticket.attempt;
  const beats = startHeartbeats(ticket, tracker, policyFor(ticket.type));
  try {
    const report = await attemptReport(ticket.type, ticket.inputJson, attempt, () => beats.progress, async (prepared) => {
      const end = await runAttempt(prepared, ticket, beats, env);
      if (end.kind === "crash") throw new InvocationCrash(runId, end.error);
      return end;
    });
    if (report === null) {
      // Fenced: the tracker took the lease away (a newer attempt, or the run ended).
      log.info("consumer.attempt_fenced", { runId, attempt, messageId: message.id });
      message.ack();
      return;
    }
    const answer = await deliverReport(tracker, report, runId);
    log.info("consumer.reported", { runId, attempt, kind: report.kind, ok: answer.ok, applied: answer.ok ? answer.applied : false });
    message.ack();
  } finally {
    beats.stop();
  }
}

type Prepared = Extract<PreparedInput, { ok: true }>;

/** What the attempt reports: its result, or its failure; `null` when it was fenced. */
async function attemptReport(
  type: string,
  inputJson: string,
  attempt: number,
  progress: () => AttemptReport["progress"],
  run: (prepared: Prepared) => ReturnType<typeof runAttempt>,
): Promise<AttemptReport | null> {
  const failure = (
    reason: Extract<AttemptReport, { kind: "failure" }>["reason"],
    retryable: boolean,
    message: string,
    retryAfterMs?: number,
  ): AttemptReport => ({
    kind: "failure",
    attempt,
    reason,
    retryable,
    message,
    ...(progress() ? { progress: progress() } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  });
  const op = getOperation(type);
  if (!op) return failure("operation.unknown_type", false, `No handler is registered for type "${type}".`);
  const prepared = op.prepare(JSON.parse(inputJson));
  if (!prepared.ok) {
    const fields = prepared.issues.map((i) => `${i.path}: ${i.message}`).join("; ");
    return failure("input.invalid", false, `The stored input is not valid for ${op.type}: ${fields}`);
  }
  const end = await run(prepared);
  switch (end.kind) {
    case "result": {
      // Output is kept only with a success (contract section 1); one JSON cannot hold, or over
      // the cap, is the handler's bug and would come back the same on a retry: not retryable.
      const output = end.result.outcome === "failed" ? ({ ok: true, json: undefined } as const) : serializeOutput(end.result.output);
      if (!output.ok) return failure("handler.error", false, output.message);
      return {
        kind: "result",
        attempt,
        outcome: end.result.outcome,
        ...(end.result.message !== undefined ? { message: end.result.message } : {}),
        ...(end.result.progress !== undefined ? { progress: end.result.progress } : {}),
        ...(output.json !== undefined ? { outputJson: output.json } : {}),
      };
    }
    case "timeout":
      // Retryable, as in Temporal and BullMQ: a hung dependency may answer next time.
      return failure("attempt.timeout", true, `The attempt exceeded its timeout of ${end.timeoutMs} ms.`);
    case "error":
      return failure("handler.error", end.retryable, errorMessage(end.error), end.retryAfterMs);
    case "cancelled":
      // The run's tracker ends the run `cancelled` once it holds this report.
      return { kind: "stopped", attempt, ...(progress() ? { progress: progress() } : {}) };
    case "fenced":
    case "crash":
      return null;
  }
}

/**
 * Hand the report to the tracker, retrying a failed call (a Durable Object
 * reset between the handler's return and the write answers with an error) while
 * the heartbeats go on. The tracker dedupes a report it already holds.
 * Throws when every try failed: the message is retried and, with the attempt's
 * heartbeats stopped, the tracker declares it lost — the last resort.
 */
async function deliverReport(tracker: { report(r: AttemptReport): Promise<ReportAnswer> }, report: AttemptReport, runId: string): Promise<ReportAnswer> {
  for (let i = 0; ; i++) {
    try {
      return await tracker.report(report);
    } catch (error) {
      const wait = REPORT_RETRIES[i];
      log.warn("consumer.report_failed", { runId, attempt: report.attempt, kind: report.kind, try: i + 1, error });
      if (wait === undefined) throw error;
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }
}
