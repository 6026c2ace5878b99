/** One fresh local runtime per figure: its own state, started and always stopped and removed. */
import { accessSync, constants, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BenchClient } from "./client";
import { DevServer } from "./dev";
import { RESULTS_DIR } from "./results";

export const LOG_DIR = resolve(RESULTS_DIR, "logs");

/**
 * Where an instance keeps its local state (`--persist-to`: D1's, every
 * Durable Object's and the queues' SQLite files):
 * - `disk`: the OS temporary directory (`os.tmpdir()`), as `npm start` keeps
 *   its state on disk. Each SQLite commit there costs the machine's disk
 *   writes and syncs, on the runtime's one thread.
 * - `memory`: `/dev/shm`, a memory-backed file system (Linux), so the same
 *   commits cost no disk I/O and a figure measures the runtime's CPU alone.
 */
export type StateStorage = "disk" | "memory";

/** The memory-backed directory `memory` uses. */
export const MEMORY_STATE_ROOT = "/dev/shm";

/** Is `memory` available on this machine (a writable `/dev/shm` directory)? */
export function memoryStateAvailable(): boolean {
  try {
    accessSync(MEMORY_STATE_ROOT, constants.W_OK);
    return statSync(MEMORY_STATE_ROOT).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Runs `fn` against a fresh instance, then stops it and removes its state.
 * Throws if `storage` is `memory` and the machine has no `/dev/shm`
 * (check `memoryStateAvailable()` first).
 */
export async function withInstance<T>(
  label: string,
  vars: Record<string, string>,
  fn: (dev: DevServer, client: BenchClient) => Promise<T>,
  storage: StateStorage = "disk",
): Promise<T> {
  if (storage === "memory" && !memoryStateAvailable()) throw new Error(`no writable ${MEMORY_STATE_ROOT} for an instance's state in memory`);
  const dir = mkdtempSync(join(storage === "memory" ? MEMORY_STATE_ROOT : tmpdir(), `oplife-bench-${label}-`));
  const dev = new DevServer({ dir, label, vars });
  try {
    await dev.prepare();
    await dev.start();
    return await fn(dev, new BenchClient(dev));
  } finally {
    await dev.stop();
    if (existsSync(dev.logFile)) {
      mkdirSync(LOG_DIR, { recursive: true });
      copyFileSync(dev.logFile, join(LOG_DIR, `${label}.log`));
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Poll `check` every `everyMs` until it returns a value, or throw after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, everyMs: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * The cron as the platform runs it: `* * * * *` fires at each wall-clock
 * minute. wrangler dev does not fire crons by itself; this does, through
 * /__scheduled, until stopped.
 */
export function emulateCron(client: BenchClient, onFire?: (at: number) => void): { stop(): void } {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    if (stopped) return;
    const wait = 60_000 - (Date.now() % 60_000);
    timer = setTimeout(async () => {
      if (stopped) return;
      const at = Date.now();
      try {
        await client.scheduled();
        onFire?.(at);
      } catch (error) {
        console.warn(`cron: /__scheduled failed: ${error instanceof Error ? error.message : String(error)}`);
      }
      schedule();
    }, wait);
  };
  schedule();
  return {
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
