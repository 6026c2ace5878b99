/**
 * The bench Worker's operation registry: production's, plus `bench.noop`.
 *
 * Swapped in at bundle time by wrangler's `alias` (bench/wrangler.bench.toml
 * maps the specifier "./registry", which only src/operations/index.ts uses, to
 * this file), because src/operations/registry.ts builds its map from a fixed
 * list; the definition itself goes through production's own `registerOperation`. Everything not redefined here is
 * production's own export, unchanged; `/__bench/ping` reports the registered
 * types so a bench run fails loudly if the alias ever stops matching.
 */
import * as production from "../../src/operations/registry";
import type { LifecyclePolicy } from "../../src/lifecycle";
import { benchNoop } from "./noop";

export * from "../../src/operations/registry";

const extra = new Map<string, production.RegisteredOperation>([[benchNoop.type, production.registerOperation(benchNoop)]]);

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
