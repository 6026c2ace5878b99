/**
 * `demo.work`: an operation whose input drives its behaviour, so every path
 * of the lifecycle can be exercised from the API, the tests and the demo.
 *
 * Local and test builds only: it is registered by src/local/ (through
 * src/index.local.ts), never by production's registry, because its inputs are
 * fault injection (hang, crash, 300 s timeouts) that no API token of a
 * deployed Worker may trigger.
 */
import { z } from "zod";
import type { Progress } from "../lifecycle";
import { SimulatedCrash } from "../local/faults";
import { defineOperation, RetryableError } from "./types";

const step = z.number().int().min(1).max(10_000);

export const demoWorkInput = z
  .object({
    steps: step,
    stepMs: z.number().int().min(0).max(600_000),
    /** Return outcome `failed` at this step. */
    failAtStep: step.optional(),
    /** This step's item fails; the run ends `partially_succeeded`. */
    partialAtStep: step.optional(),
    /** Throw a retryable error at this step on the first `throwTimes` attempts. */
    throwAtStep: step.optional(),
    throwTimes: z.number().int().min(1).max(100).optional(),
    /** Await forever at this step (ignoring the abort signal): only the timeout ends it. */
    hangAtStep: step.optional(),
    /**
     * Crash at this step, as a killed isolate would: the consumer invocation
     * ends (taking its batch with it), heartbeats stop, and the tracker declares
     * the attempt lost and dispatches a new one. Every attempt crashes here.
     */
    dieAtStep: step.optional(),
    /** Per-run attempt timeout, capped by the policy's timeoutMs. */
    timeoutMs: z.number().int().min(100).max(300_000).optional(),
  })
  .strict()
  .superRefine((input, ctx) => {
    for (const key of ["failAtStep", "partialAtStep", "throwAtStep", "hangAtStep", "dieAtStep"] as const) {
      const at = input[key];
      if (at !== undefined && at > input.steps) {
        ctx.addIssue({ code: "custom", path: [key], message: `must be between 1 and steps (${input.steps})` });
      }
    }
    if (input.throwTimes !== undefined && input.throwAtStep === undefined) {
      ctx.addIssue({ code: "custom", path: ["throwTimes"], message: "needs throwAtStep" });
    }
  });

export type DemoWorkInput = z.infer<typeof demoWorkInput>;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export const demoWork = defineOperation({
  type: "demo.work",
  description: "Processes `steps` items, `stepMs` each; optional faults for every lifecycle path.",
  input: demoWorkInput,
  policy: {
    timeoutMs: 60_000,
    expectedRuntimeMs: 20_000,
    heartbeatIntervalMs: 1_000,
    heartbeatTimeoutMs: 5_000,
    staleQueuedAfterMs: 120_000,
    staleRunningAfterMs: 90_000,
    maxAttempts: 3,
    retryDelaySeconds: 5,
    queue: "operations",
  },
  attemptTimeoutMs: (input) => input.timeoutMs,
  async handler(input, ctx) {
    const progress: Progress = { total: input.steps, processed: 0, succeeded: 0, failed: 0 };
    ctx.reportProgress({ ...progress });
    for (let stepNo = 1; stepNo <= input.steps; stepNo++) {
      ctx.signal.throwIfAborted();
      if (input.hangAtStep === stepNo) await new Promise<never>(() => {});
      if (input.dieAtStep === stepNo) throw new SimulatedCrash(`Simulated crash at step ${stepNo} (attempt ${ctx.attempt}).`);
      if (input.throwAtStep === stepNo && ctx.attempt <= (input.throwTimes ?? 1)) {
        throw new RetryableError(`Simulated transient error at step ${stepNo} (attempt ${ctx.attempt}).`);
      }
      if (input.failAtStep === stepNo) {
        return { outcome: "failed", message: `Step ${stepNo} of ${input.steps} failed (simulated).`, progress };
      }
      if (input.stepMs > 0) await sleep(input.stepMs, ctx.signal);
      progress.processed++;
      if (input.partialAtStep === stepNo) progress.failed++;
      else progress.succeeded++;
      ctx.reportProgress({ ...progress });
    }
    if (progress.failed > 0) {
      return {
        outcome: "partially_succeeded",
        message: `${progress.failed} of ${progress.total} items failed (simulated).`,
        progress,
        output: { items: progress.succeeded },
      };
    }
    // A small output, so the demo shows one: how many items were done.
    return { outcome: "succeeded", progress, output: { items: progress.succeeded } };
  },
});
