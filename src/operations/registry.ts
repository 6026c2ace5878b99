/**
 * The operation registry: every type the system accepts, with its input
 * schema, policy and handler. Add a type by writing one file beside this one
 * and listing it here; the timing contract then checks its policy.
 *
 * Production's list is what `wrangler deploy` ships. Local and test builds
 * add their own types on top (`registerLocalOperations`, called by
 * src/index.local.ts for `demo.work`); production never calls it.
 */
import type { z } from "zod";
import type { LifecyclePolicy } from "../lifecycle";
import type { OperationContext, OperationDefinition, OperationResult } from "./types";

export interface InputIssue {
  path: string;
  message: string;
}

/** Input checked against the type's schema: a runnable attempt, or the field errors. */
export type PreparedInput =
  | { ok: true; input: unknown; timeoutMs: number; run(ctx: OperationContext): Promise<OperationResult> }
  | { ok: false; issues: InputIssue[] };

/** A registered type, its input type erased behind `prepare` so no handler sees unvalidated input. */
export interface RegisteredOperation {
  type: string;
  description: string;
  policy: LifecyclePolicy;
  prepare(raw: unknown): PreparedInput;
}

function issuesOf(error: z.ZodError): InputIssue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/** A definition behind its input-checking `prepare` (also used by the bench Worker to add its own types). */
export function registerOperation<I>(op: OperationDefinition<I>): RegisteredOperation {
  return {
    type: op.type,
    description: op.description,
    policy: op.policy,
    prepare(raw) {
      const parsed = op.input.safeParse(raw);
      if (!parsed.success) return { ok: false, issues: issuesOf(parsed.error) };
      const input = parsed.data;
      const own = op.attemptTimeoutMs?.(input);
      const timeoutMs = own === undefined ? op.policy.timeoutMs : Math.min(own, op.policy.timeoutMs);
      return { ok: true, input, timeoutMs, run: (ctx) => op.handler(input, ctx) };
    },
  };
}

/** Production's types, each through `registerOperation`. None yet: `demo.work` is local-only (src/local/). */
const PRODUCTION_OPERATIONS: RegisteredOperation[] = [];

const byType = new Map<string, RegisteredOperation>(PRODUCTION_OPERATIONS.map((op) => [op.type, op]));

/**
 * Local and test builds only (src/local/, the bench Worker): add types beside
 * production's. Throws if a type is already registered: a local type never
 * shadows a production one.
 */
export function registerLocalOperations(ops: readonly RegisteredOperation[]): void {
  for (const op of ops) {
    if (byType.has(op.type)) throw new Error(`operation type "${op.type}" is already registered`);
    byType.set(op.type, op);
  }
}

export function getOperation(type: string): RegisteredOperation | undefined {
  return byType.get(type);
}

export function operationTypes(): string[] {
  return [...byType.keys()];
}

/** Every registered type's policy, keyed by type (what the timing contract checks). */
export function registeredPolicies(): Record<string, LifecyclePolicy> {
  return Object.fromEntries([...byType].map(([type, op]) => [type, op.policy]));
}

/**
 * Thresholds for a run whose type is no longer registered (removed by a
 * deploy): generous, so such runs still converge through the sweep and the
 * tracker without being mistaken for fresh work.
 */
export const FALLBACK_POLICY: LifecyclePolicy = {
  timeoutMs: 600_000,
  expectedRuntimeMs: 60_000,
  heartbeatIntervalMs: 10_000,
  heartbeatTimeoutMs: 60_000,
  staleQueuedAfterMs: 600_000,
  staleRunningAfterMs: 600_000,
  maxAttempts: 3,
  retryDelaySeconds: 5,
  queue: "operations",
};

/** The policy in force for `type`: its own, or the fallback when the type is gone. */
export function policyFor(type: string): LifecyclePolicy {
  return byType.get(type)?.policy ?? FALLBACK_POLICY;
}
