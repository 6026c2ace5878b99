/**
 * Paths and process helpers shared by the node-side scripts. Every path is
 * resolved from the project root, so the scripts work from any cwd.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { createRequire } from "node:module";
import { dirname, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { offlineWranglerEnv } from "./quiet";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const WRANGLER_TOML = resolve(ROOT, "wrangler.toml");
/**
 * The entry of local and test builds (`npm start`, the tests, the bench):
 * production's Worker plus demo.work and the fault hooks. `wrangler deploy`
 * uses wrangler.toml's `main` (src/index.ts), which has neither.
 */
export const LOCAL_ENTRY = resolve(ROOT, "src/index.local.ts");
export const GENERATED_DEPLOYMENT = resolve(ROOT, "src/generated/deployment.ts");

/** A path as shown to people: relative to the project root when inside it. */
export function shown(path: string): string {
  const rel = relative(ROOT, path);
  return rel.startsWith("..") ? path : rel;
}

/** Thrown for bad command-line input; entry points print the message and exit 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

export interface Completed {
  code: number;
  stdout: string;
  stderr: string;
}

/** wrangler's own launcher script (it starts the CLI as a child and forwards SIGINT/SIGTERM to it). */
const WRANGLER_BIN = resolve(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");

/**
 * Start `wrangler <args>` with the node running this script (the project's
 * node 24: npm scripts and npx put it first on PATH), its calls home off
 * (./quiet.ts) unless `env` says otherwise.
 *
 * Not `npx wrangler`: npx runs wrangler under `sh -c`, and a signal sent to
 * npx stops npx and the shell but orphans wrangler and workerd, still holding
 * the port. wrangler's launcher, signalled directly, shuts workerd down.
 */
export function spawnWrangler(args: string[], stdio: SpawnOptions["stdio"], env: NodeJS.ProcessEnv = offlineWranglerEnv()): ChildProcess {
  return spawn(process.execPath, [WRANGLER_BIN, ...args], { cwd: ROOT, env, stdio });
}

/**
 * Run `wrangler <args>` to completion. Output is captured unless `inherit` is
 * set. stdin is never a TTY here, so wrangler skips its confirmation prompts
 * (e.g. `d1 migrations apply`), which is what a scripted local run wants.
 */
export function runWrangler(args: string[], opts: { inherit?: boolean } = {}): Promise<Completed> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnWrangler(args, opts.inherit ? ["ignore", "inherit", "inherit"] : ["ignore", "pipe", "pipe"]);
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code, signal) => resolvePromise({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
  });
}
