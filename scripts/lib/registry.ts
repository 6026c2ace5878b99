/**
 * The registered types' policies, read in Node from the Worker's own registry
 * module (src/operations/registry.ts) without running it as Node code.
 *
 * Operation files are Worker code: they may `import { env } from
 * "cloudflare:workers"` (or any `cloudflare:*` module), which Node cannot
 * resolve. So the registry is bundled with esbuild (the bundler wrangler
 * itself uses) with every `cloudflare:*` import left out, and the bundle is
 * evaluated in memory with those imports answered by an inert stub. Module top level runs as it would
 * at Worker startup, where bindings are only read inside handlers; a binding
 * read at top level yields the stub, never a value, and policies are plain
 * numbers, so they read the same as in the Worker.
 */
import { build } from "esbuild";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import type { LifecyclePolicy } from "../../src/lifecycle/policy";
import { ROOT, shown, UsageError } from "./project";

/** Production's registry plus the local build's types (src/local/registry.ts). */
export const REGISTRY_MODULE = resolve(ROOT, "src/local/registry.ts");

/**
 * What every `cloudflare:*` import yields: one callable, constructible,
 * extendable proxy, whatever name is read from it (`env`, `env.DB`,
 * `WorkerEntrypoint`, `connect`, …).
 */
const stub: unknown = new Proxy(function () {}, {
  get: (_target, key) => (key === "prototype" ? {} : key === Symbol.toPrimitive ? () => "" : stub),
  apply: () => stub,
  construct: () => ({}),
});

/**
 * Evaluate a CommonJS bundle. CommonJS, not ESM: esbuild then reads a named
 * import of an external module as a property of what `require` returned, at
 * the moment it is used, so any name of a `cloudflare:*` module resolves to
 * the stub; an ESM bundle would have to link each name to a real export.
 */
function evaluate(code: string, entry: string): Record<string, unknown> {
  const nodeRequire = createRequire(entry);
  const require = (id: string): unknown => (id.startsWith("cloudflare:") ? stub : nodeRequire(id));
  const module = { exports: {} as Record<string, unknown> };
  new Function("require", "module", "exports", code)(require, module, module.exports);
  return module.exports;
}

/** A policy's numeric fields (`queue` is a name, not a number). */
export type NumericField = { [K in keyof LifecyclePolicy]: LifecyclePolicy[K] extends number ? K : never }[keyof LifecyclePolicy];
export const NUMERIC_FIELDS: readonly NumericField[] = [
  "timeoutMs",
  "expectedRuntimeMs",
  "heartbeatIntervalMs",
  "heartbeatTimeoutMs",
  "staleQueuedAfterMs",
  "staleRunningAfterMs",
  "maxAttempts",
  "retryDelaySeconds",
];

function isPolicy(p: unknown): p is LifecyclePolicy {
  if (p === null || typeof p !== "object") return false;
  const o = p as Record<string, unknown>;
  return typeof o.queue === "string" && NUMERIC_FIELDS.every((f) => typeof o[f] === "number" && Number.isFinite(o[f]));
}

/**
 * `registeredPolicies()` of the registry module at `entry` (default: the
 * Worker's). Throws `UsageError` when the module cannot be bundled (a syntax
 * or import error, with esbuild's message), does not export
 * `registeredPolicies`, throws while loading, or yields something that is not
 * a policy per type.
 */
export async function loadRegisteredPolicies(entry: string = REGISTRY_MODULE): Promise<Record<string, LifecyclePolicy>> {
  let code: string;
  try {
    const out = await build({
      entryPoints: [entry],
      bundle: true,
      write: false,
      format: "cjs",
      platform: "node",
      target: "node22",
      logLevel: "silent",
      // Resolved by `evaluate`'s require: the stub for these, Node's own for builtins.
      external: ["cloudflare:*"],
    });
    code = out.outputFiles[0]!.text;
  } catch (e) {
    throw new UsageError(`cannot bundle ${shown(entry)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let mod: Record<string, unknown>;
  try {
    mod = evaluate(code, entry);
  } catch (e) {
    throw new UsageError(`cannot load ${shown(entry)}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof mod.registeredPolicies !== "function") {
    throw new UsageError(`${shown(entry)} does not export registeredPolicies()`);
  }
  const policies: unknown = mod.registeredPolicies();
  if (policies === null || typeof policies !== "object") throw new UsageError(`${shown(entry)}: registeredPolicies() is not an object`);
  for (const [type, policy] of Object.entries(policies)) {
    if (!isPolicy(policy)) throw new UsageError(`${shown(entry)}: the policy of "${type}" is not a lifecycle policy`);
  }
  return policies as Record<string, LifecyclePolicy>;
}

/**
 * One registered type's policy, for node-side tools (the bench, the browser
 * tests) that need its numbers. Throws `Error` when the type is not registered.
 */
export async function registeredPolicy(type: string, entry: string = REGISTRY_MODULE): Promise<LifecyclePolicy> {
  const policy = (await loadRegisteredPolicies(entry))[type];
  if (!policy) throw new Error(`operation type "${type}" is not registered in ${shown(entry)}`);
  return policy;
}
