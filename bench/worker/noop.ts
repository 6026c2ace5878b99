/**
 * `bench.noop`: a type whose handler does nothing and succeeds, so the
 * throughput figure measures the lifecycle machinery and nothing else. It
 * exists only in the bench Worker (registered by index.ts); production never sees it.
 */
import { z } from "zod";
import { demoWork } from "../../src/operations/demo-work";
import { defineOperation } from "../../src/operations/types";

export const benchNoop = defineOperation({
  type: "bench.noop",
  description: "Bench only: does nothing and succeeds.",
  input: z.object({}).strict(),
  // demo.work's policy: the same queue, so the same timing contract (T1–T9) holds.
  policy: demoWork.policy,
  async handler() {
    return { outcome: "succeeded" };
  },
});
