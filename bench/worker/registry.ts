/**
 * The bench Worker's operation registry: production's, plus `bench.noop`.
 *
 * Swapped in at bundle time by wrangler's `alias` (bench/wrangler.bench.toml
 * maps the specifier "./registry", which only src/operations/index.ts uses, to
 * this file), because src/operations/registry.ts builds its map from a fixed
 * list and offers no way to add a definition. Everything not redefined here is
 * production's own export, unchanged; `/__bench/ping` reports the registered
 * types so a bench run fails loudly if the alias ever stops matching.
 */
import type { z } from "zod";
import * as production from "../../src/operations/registry";
import type { OperationDefinition } from "../../src/operations/types";
import type { LifecyclePolicy } from "../../src/lifecycle";
import { benchNoop } from "./noop";

export * from "../../src/operations/registry";

function issuesOf(error: z.ZodError): production.InputIssue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/** The same shape production's (private) `register` gives a definition. */
function register<I>(op: OperationDefinition<I>): production.RegisteredOperation {
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

const extra = new Map<string, production.RegisteredOperation>([[benchNoop.type, register(benchNoop)]]);

export function getOperation(type: string): production.RegisteredOperation | undefined {
  return extra.get(type) ?? production.getOperation(type);
}

export function operationTypes(): string[] {
  return [...production.operationTypes(), ...extra.keys()];
}

export function registeredPolicies(): Record<string, LifecyclePolicy> {
  return { ...production.registeredPolicies(), ...Object.fromEntries([...extra].map(([t, op]) => [t, op.policy])) };
}

export function policyFor(type: string): LifecyclePolicy {
  return extra.get(type)?.policy ?? production.policyFor(type);
}
