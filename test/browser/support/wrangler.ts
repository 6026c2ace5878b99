/**
 * wrangler for the browser tests: its own launcher (bin/wrangler.js) run with
 * this process's node, in an environment that keeps it on localhost and out
 * of the developer's state.
 *
 * Not scripts/lib/project.ts's spawnWrangler: `wrangler dev` here must lead
 * its own process group (so teardown can end workerd and esbuild with it),
 * and every call needs a timeout and the offline environment below.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { OFFLINE_WRANGLER_ENV } from "../../../scripts/lib/quiet";

export const ROOT = fileURLToPath(new URL("../../..", import.meta.url));

const WRANGLER_BIN = resolve(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");

/**
 * No update check (the banner's npm registry request), no telemetry, no fetch
 * of the `Request.cf` object from workers.cloudflare.com (OFFLINE_WRANGLER_ENV,
 * forced here, whatever the developer's shell says), no colours; debug logs
 * into `logDir` instead of ~/.wrangler/logs.
 */
export function offlineEnv(logDir: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    ...OFFLINE_WRANGLER_ENV,
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    WRANGLER_HIDE_BANNER: "true",
    // --env-file is read only when this is on (its default); a developer's shell may turn it off.
    CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "true",
    WRANGLER_LOG_PATH: logDir,
  };
}

/** Start `wrangler <args>` as the leader of a new process group (stdin closed: never a TTY, so no prompts). */
export function spawnWranglerGroup(args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [WRANGLER_BIN, ...args], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
}

/** Signal a whole process group; false when it no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw e;
  }
}

/**
 * End a process group: SIGTERM (wrangler's launcher and CLI shut workerd down
 * on it), then SIGKILL whatever is left after `graceMs`.
 */
export async function killGroup(pgid: number, graceMs = 5_000): Promise<void> {
  if (!signalGroup(pgid, "SIGTERM")) return;
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    await new Promise((r) => setTimeout(r, 100));
    if (!signalGroup(pgid, 0)) return;
  }
  signalGroup(pgid, "SIGKILL");
}

export interface Completed {
  code: number | null;
  output: string;
}

/** Run `wrangler <args>` to completion within `timeoutMs`; on timeout its group is killed and the promise rejects. */
export function runWrangler(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 90_000): Promise<Completed> {
  return new Promise((resolvePromise, reject) => {
    const child = spawnWranglerGroup(args, env);
    let output = "";
    child.stdout?.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      if (child.pid !== undefined) void killGroup(child.pid, 1_000);
      reject(new Error(`wrangler ${args.join(" ")} did not finish within ${timeoutMs} ms. Output so far:\n${output}`));
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(new Error(`could not start wrangler (${process.execPath} ${WRANGLER_BIN}): ${e.message}`));
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output });
    });
  });
}

/** Where `wrangler dev` keeps its local state and how to reach it; handed from the global setup to the tests. */
export interface LocalWorker {
  baseUrl: string;
  /** The `--persist-to` directory (local D1, Durable Objects, queues). */
  persistTo: string;
  /** Directory for wrangler's own logs. */
  logDir: string;
  /** The demo workspace's API token (the project's seed stores only its hash). */
  demoToken: string;
}

/** Execute SQL against the local D1 that `wrangler dev` serves (it sees the change at once: same SQLite files). */
export async function executeSql(worker: Pick<LocalWorker, "persistTo" | "logDir">, sql: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "oplife-browser-sql-"));
  const file = join(dir, "statements.sql");
  try {
    writeFileSync(file, sql);
    const r = await runWrangler(
      ["d1", "execute", "DB", "--local", "--persist-to", worker.persistTo, "--file", file],
      offlineEnv(worker.logDir),
    );
    if (r.code !== 0) throw new Error(`wrangler d1 execute failed (exit ${r.code}):\n${r.output}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
