/**
 * The bench harness's local runtime: `wrangler dev` for the bench Worker
 * (bench/wrangler.bench.toml), on a free loopback port, with its own
 * --persist-to directory and --env-file, the same runtime `npm start` uses.
 * The node tests' real-batch scenarios run the production Worker with it
 * (test/node/support/local-runtime.ts: `config`, `readyPath`, `extraSeedSql`).
 *
 * Started like scripts/lib/project.ts starts wrangler — wrangler's launcher
 * with the node running this script, never node_modules/.bin — but in its own
 * process group, so `kill()` can SIGKILL the launcher, the wrangler CLI and
 * workerd together (the soak's fault) and `stop()` can end them all.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { ROOT, runWrangler } from "../../scripts/lib/project";
import { hashToken, newDemoToken, seedSql } from "../../scripts/lib/seed";

export const BENCH_CONFIG = resolve(ROOT, "bench/wrangler.bench.toml");
export const SOAK_CONFIG = resolve(ROOT, "bench/wrangler.soak.toml");

// Loopback only: no banner (its npm update check), no Request.cf download, no
// metrics. Set here so every wrangler this process starts inherits them.
process.env.WRANGLER_HIDE_BANNER = "true";
process.env.CLOUDFLARE_CF_FETCH_ENABLED = "false";
process.env.WRANGLER_SEND_METRICS = "false";
const WRANGLER_BIN = resolve(dirname(createRequire(import.meta.url).resolve("wrangler/package.json")), "bin/wrangler.js");

/** Workspace and token every bench instance is seeded with (scripts/lib/seed.ts). */
export const WORKSPACE = "ws_demo";

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function wrangler(args: string[]): Promise<string> {
  const r = await runWrangler(args);
  if (r.code !== 0) throw new Error(`wrangler ${args.join(" ")} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `wrangler d1 execute --local --json` against an instance's state; returns the first statement's results. */
export async function d1Execute(persistTo: string, sql: string, config: string = BENCH_CONFIG): Promise<Record<string, unknown>[]> {
  const out = await wrangler(["d1", "execute", "DB", "--local", "--persist-to", persistTo, "-c", config, "--json", "--command", sql]);
  const parsed = JSON.parse(out) as { results: Record<string, unknown>[] }[];
  return parsed[0]?.results ?? [];
}

const builds = new Map<string, Promise<{ script: string; at: string }>>();

/**
 * Bundle the bench Worker once per harness process, config and entry (`wrangler
 * deploy --dry-run --outdir`: wrangler's own build) and run
 * every instance from that snapshot with `--no-bundle`. `wrangler dev` would
 * otherwise watch src/ and reload the Worker mid-measurement whenever a file
 * changes, and a soak restarted after SIGKILL could come back as other code.
 */
export function benchWorkerBuild(config: string = BENCH_CONFIG, entry?: string): Promise<{ script: string; at: string }> {
  const key = `${config}\0${entry ?? ""}`;
  let build = builds.get(key);
  if (!build) {
    build = (async () => {
      const dir = mkdtempSync(join(tmpdir(), "oplife-bench-build-"));
      process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
      await wrangler(["deploy", "--dry-run", "--outdir", dir, "-c", config, ...(entry ? [entry] : [])]);
      // wrangler names the bundle after its entry: worker/index.ts → index.js, index.local.ts → index.local.js.
      const script = join(dir, entry ? basename(entry).replace(/\.[cm]?[jt]sx?$/, ".js") : "index.js");
      return { script, at: new Date().toISOString() };
    })();
    builds.set(key, build);
  }
  return build;
}

/** Every runtime this process started and has not stopped: ended when this process ends. */
const live = new Set<DevServer>();
let handlersInstalled = false;

function installSignalHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // Also on any other way out (an uncaught error, a closed pipe): no runtime outlives its harness.
  process.once("exit", () => {
    for (const dev of live) dev.killNow();
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping ${live.size} local runtime(s)`);
      for (const dev of live) dev.killNow();
      process.exit(130);
    });
  }
}

export interface DevOptions {
  /** Directory for this instance: state, env file, log. */
  dir: string;
  label: string;
  /** Extra variables for the Worker (written to the --env-file). */
  vars?: Record<string, string>;
  /** The wrangler config (default: bench/wrangler.bench.toml). */
  config?: string;
  /** The entry module, instead of the config's `main` (e.g. scripts/lib/project.ts LOCAL_ENTRY). */
  entry?: string;
  /** A GET path that answers 2xx once the Worker serves (default: the bench Worker's /__bench/ping). */
  readyPath?: string;
  /** SQL run after the seed (default: the bench's own baseline table). */
  extraSeedSql?: string;
}

/** SGR colour codes (ESC [ … m), which wrangler puts around the Worker's warn and error lines. */
const ANSI_ESCAPE = /\x1b\[[0-9;]*m/g;

const BENCH_TABLES_SQL = "CREATE TABLE IF NOT EXISTS bench_bare (id TEXT PRIMARY KEY NOT NULL, sent_at INTEGER NOT NULL, done_at INTEGER NOT NULL);\n";

export interface LogEvent {
  at: number;
  event: string;
  fields: Record<string, unknown>;
}

export class DevServer {
  readonly persistTo: string;
  readonly envFile: string;
  readonly logFile: string;
  readonly token = newDemoToken();
  port = 0;
  /** The DevTools inspector wrangler serves for this instance (its proxy; bench/profile.ts attaches to it). 0 before start. */
  inspectorPort = 0;
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private buffer = "";
  private buildFailed = false;
  private listeners = new Set<(e: LogEvent) => void>();
  starts = 0;
  kills = 0;

  readonly config: string;

  constructor(readonly opts: DevOptions) {
    this.config = opts.config ?? BENCH_CONFIG;
    this.persistTo = join(opts.dir, "state");
    this.envFile = join(opts.dir, "bench.env");
    this.logFile = join(opts.dir, "wrangler-dev.log");
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Apply the migrations, seed the demo workspace and token, then `extraSeedSql` (the bench's own table by default). */
  async prepare(): Promise<void> {
    mkdirSync(this.persistTo, { recursive: true });
    const vars = { DEV_SIGN_IN: "1", SESSION_SECRET: randomBytes(32).toString("base64url"), ...this.opts.vars };
    writeFileSync(this.envFile, Object.entries(vars).map(([k, v]) => `${k}=${v}\n`).join(""), { mode: 0o600 });
    await wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", this.persistTo, "-c", this.config]);
    const seed = join(this.opts.dir, "seed.sql");
    writeFileSync(seed, seedSql(hashToken(this.token), Date.now()) + (this.opts.extraSeedSql ?? BENCH_TABLES_SQL));
    await wrangler(["d1", "execute", "DB", "--local", "--persist-to", this.persistTo, "-c", this.config, "--file", seed]);
  }

  /** Start wrangler dev (the same port again after a kill) and wait until the Worker answers. */
  async start(timeoutMs = 120_000): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const inspector = await freePort();
    this.inspectorPort = inspector;
    const { script } = await benchWorkerBuild(this.config, this.opts.entry);
    installSignalHandlers();
    // No --test-scheduled: with --no-bundle wrangler cannot inject its /__scheduled
    // shim; the harness fires the cron at /cdn-cgi/local/scheduled instead, which
    // miniflare answers by dispatching a real scheduled event.
    const args = [
      WRANGLER_BIN,
      "dev",
      script,
      "--no-bundle",
      "-c",
      this.config,
      "--persist-to",
      this.persistTo,
      "--env-file",
      this.envFile,
      "--ip",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--inspector-port",
      String(inspector),
      "--show-interactive-dev-session=false",
    ];
    appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} start #${this.starts + 1}: wrangler ${args.slice(1).join(" ")}\n`);
    const child = spawn(process.execPath, args, {
      cwd: ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FORCE_COLOR: "0", NO_COLOR: "1" },
    });
    this.child = child;
    live.add(this);
    this.starts++;
    this.exited = new Promise((res) => child.once("exit", () => res()));
    const onData = (d: Buffer) => this.onOutput(d.toString());
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wrangler dev (${this.opts.label}) exited during start; see ${this.logFile}`);
      }
      if (this.buildFailed) {
        await this.kill();
        throw new Error(`wrangler dev (${this.opts.label}): the bench Worker did not build; see ${this.logFile}`);
      }
      try {
        const res = await fetch(`${this.base}${this.opts.readyPath ?? "/__bench/ping"}`, { signal: AbortSignal.timeout(2_000) });
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await sleep(250);
    }
    await this.kill();
    throw new Error(`wrangler dev (${this.opts.label}) did not answer within ${timeoutMs} ms; see ${this.logFile}`);
  }

  private onOutput(text: string): void {
    appendFileSync(this.logFile, text);
    if (text.includes("Build failed")) this.buildFailed = true;
    this.buffer += text;
    const lines = this.buffer.split("\n");
    this.buffer = lines.pop() ?? "";
    for (const raw of lines) {
      // wrangler colours console.warn/error lines even with NO_COLOR set: strip the escapes around the JSON.
      const line = raw.replace(ANSI_ESCAPE, "");
      const start = line.indexOf('{"level"');
      if (start < 0) continue;
      try {
        const parsed = JSON.parse(line.slice(start)) as Record<string, unknown>;
        if (typeof parsed.event !== "string") continue;
        const e: LogEvent = { at: Date.now(), event: parsed.event, fields: parsed };
        for (const l of this.listeners) l(e);
      } catch {
        // a line that merely contains the marker
      }
    }
  }

  /** Call `fn` for every structured log line the Worker prints; returns the unsubscribe. */
  onLog(fn: (e: LogEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The next log line named `event` (within `timeoutMs`). */
  nextLog(event: string, timeoutMs = 30_000): Promise<LogEvent> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        off();
        rej(new Error(`no "${event}" log line within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.onLog((e) => {
        if (e.event !== event) return;
        clearTimeout(timer);
        off();
        res(e);
      });
    });
  }

  private signalGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // the group is already gone
    }
  }

  /** SIGKILL the whole runtime (launcher, wrangler, workerd) at once: no shutdown, no flush. */
  async kill(): Promise<void> {
    if (!this.child) return;
    appendFileSync(this.logFile, `\n=== ${new Date().toISOString()} SIGKILL process group ${this.child.pid}\n`);
    this.signalGroup("SIGKILL");
    await this.exited;
    this.child = null;
    live.delete(this);
    this.kills++;
  }

  /** Synchronous last resort (signal handlers): SIGKILL the group, do not wait. */
  killNow(): void {
    this.signalGroup("SIGKILL");
  }

  /** Ask wrangler to shut down; SIGKILL whatever is left after `graceMs`. */
  async stop(graceMs = 15_000): Promise<void> {
    if (!this.child) return;
    this.signalGroup("SIGTERM");
    const timedOut = await Promise.race([this.exited.then(() => false), sleep(graceMs).then(() => true)]);
    // Also reaps a workerd the launcher left behind.
    this.signalGroup("SIGKILL");
    if (timedOut) await this.exited;
    this.child = null;
    live.delete(this);
  }

  get running(): boolean {
    return this.child !== null;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
