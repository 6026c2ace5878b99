/**
 * `bench.noop`: a type whose handler does nothing and succeeds, so the
 * throughput figure measures the lifecycle machinery and nothing else. It
 * exists only in the bench Worker (see registry.ts); production never sees it.
 */
import { z } from "zod";
import { defineOperation } from "../../src/operations/types";

export const benchNoop = defineOperation({
  type: "bench.noop",
  description: "Bench only: does nothing and succeeds.",
  input: z.object({}).strict(),
  // demo.work's numbers: the same queue, so the same timing contract (T1–T9) holds.
  policy: {
    timeoutMs: 300_000,
    expectedRuntimeMs: 60_000,
    heartbeatIntervalMs: 1_000,
    heartbeatTimeoutMs: 5_000,
    staleQueuedAfterMs: 120_000,
    staleRunningAfterMs: 90_000,
    maxAttempts: 3,
    retryDelaySeconds: 5,
    queue: "operations",
  },
  async handler() {
    return { outcome: "succeeded" };
  },
});
