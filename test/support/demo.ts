/**
 * The operation type the tests create runs of, and the one input they use
 * when the input does not matter: every helper and test takes these from
 * here, so "a demo run" means the same run everywhere.
 */
import { policyFor } from "../../src/operations";

export const DEMO = "demo.work";
/** demo.work's registered policy (src/operations/demo-work.ts), not a copy of its numbers. */
export const DEMO_POLICY = policyFor(DEMO);
/** A valid demo.work input: three steps, no waiting between them. */
export const DEMO_INPUT = { steps: 3, stepMs: 0 };
