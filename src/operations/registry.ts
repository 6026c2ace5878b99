/**
 * The operation registry: every type the system accepts, with its input
 * schema, policy and handler. Add a type by writing one file beside this one
 * and listing it in `OPERATIONS`; the timing contract then checks its policy
 * (docs/operations.md).
 *
 * `OPERATIONS` is what `wrangler deploy` ships. Local and test builds add
 * their own types on top (`registerLocalOperations`, called by
 * src/index.local.ts for `demo.work`); production never calls it.
 */
import type { z } from "zod";
import type { LifecyclePolicy } from "../lifecycle";
import { httpExport } from "./http-export";
import type { AnyOperationDefinition, OperationContext, OperationResult } from "./types";

/**
 * Every type this Worker runs, as a plain list of definitions. The node-side
 * contract check (`npm run check:lifecycle`) reads it by bundling this module,
 * so an operation file may import `cloudflare:workers`.
 */
export const OPERATIONS: readonly AnyOperationDefinition[] = [httpExport];

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

/**
 * A definition behind its input-checking `prepare` (also used by the bench
 * Worker to add its own types). Takes any definition, so a list maps:
 * `[a, b].map(registerOperation)`.
 */
export function registerOperation(op: AnyOperationDefinition): RegisteredOperation {
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

/** A lookup of registered types: what `getOperation` and friends read. */
export interface OperationRegistry {
  get(type: string): RegisteredOperation | undefined;
  types(): string[];
  /** Every type's policy, keyed by type (what the timing contract checks). */
  policies(): Record<string, LifecyclePolicy>;
  /** Add already-registered types; throws `Error` naming a type that is already there (nothing is shadowed). */
  add(ops: readonly RegisteredOperation[]): void;
}

/**
 * A registry of `definitions`, in list order. Throws `Error` naming the type
 * when two definitions share one: the second would silently replace the first.
 */
export function defineRegistry(definitions: readonly AnyOperationDefinition[]): OperationRegistry {
  const byType = new Map<string, RegisteredOperation>();
  for (const op of definitions) {
    if (byType.has(op.type)) throw new Error(`Operation type "${op.type}" is registered twice.`);
    byType.set(op.type, registerOperation(op));
  }
  return {
    add: (ops) => {
      for (const op of ops) {
        if (byType.has(op.type)) throw new Error(`Operation type "${op.type}" is registered twice.`);
        byType.set(op.type, op);
      }
    },
    get: (type) => byType.get(type),
    types: () => [...byType.keys()],
    policies: () => Object.fromEntries([...byType].map(([type, op]) => [type, op.policy])),
  };
}

const registry = defineRegistry(OPERATIONS);

/**
 * Local and test builds only (src/local/, the bench Worker): add types beside
 * production's. Throws `Error` if a type is already registered: a local type
 * never shadows a production one.
 */
export function registerLocalOperations(ops: readonly RegisteredOperation[]): void {
  registry.add(ops);
}

export function getOperation(type: string): RegisteredOperation | undefined {
  return registry.get(type);
}

export function operationTypes(): string[] {
  return registry.types();
}

/** Every registered type's policy, keyed by type (what the timing contract checks). */
export function registeredPolicies(): Record<string, LifecyclePolicy> {
  return registry.policies();
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
  return registry.get(type)?.policy ?? FALLBACK_POLICY;
}
