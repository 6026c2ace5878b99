/**
 * The local build of the Worker (wrangler.toml with src/index.ts's local
 * entry, src/index.local.ts: production plus demo.work) under a real `wrangler
 * dev`, for tests that need what only the local runtime does: miniflare's
 * queue delivers real batches (up to max_batch_size, after max_batch_timeout),
 * one batch at a time per queue, honours `delaySeconds`, and settles a batch's
 * acks and retries when its invocation ends — the platform semantics that the
 * Workers test integration (single-message batches, no delays) hides.
 *
 * Each runtime has its own temporary `--persist-to` state, migrated and seeded
 * with the project's seed (scripts/lib/seed.ts), a free loopback port, and no
 * network (bench/lib/dev.ts: the same launcher the bench and soak use, which
 * can SIGKILL the whole runtime and restart it on the same state and port).
 * The D1 state is read with `wrangler d1 execute --local` on that directory.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BenchClient } from "../../../bench/lib/client";
import { DevServer, sleep } from "../../../bench/lib/dev";
import { LOCAL_ENTRY, ROOT, WRANGLER_TOML } from "../../../scripts/lib/project";

/** Where each runtime's wrangler output is kept after the file ends (gitignored). */
export const LOG_DIR = resolve(ROOT, "artifacts/batches");

/** The fields of the API's run JSON (README "The API") these tests look at. */
export interface ApiRun {
  id: string;
  status: "queued" | "running" | "completed";
  outcome: string;
  attempt: number;
  maxAttempts: number;
  progress: { total: number; processed: number; succeeded: number; failed: number } | null;
  reasonCode: string | null;
  reconciledBy: string | null;
  failureMessage: string | null;
}

/** One row of `audit_events` for a run, in the order the rows sort (ids are time-ordered ULIDs). */
export interface AuditRow {
  id: string;
  runId: string;
  actor: string;
  action: string;
  metadata: Record<string, unknown> | null;
  createdAt: number;
}

/** How often a waiting test asks the API; states are waited for, never timed. */
const POLL_MS = 500;

export class LocalRuntime {
  private readonly client: BenchClient;

  private constructor(
    readonly dev: DevServer,
    private readonly dir: string,
  ) {
    this.client = new BenchClient(dev);
  }

  /**
   * Build, migrate, seed and start the Worker: the local build (demo.work and
   * the fault hooks), or with `build: "production"` what `wrangler deploy`
   * bundles; `vars` over wrangler.toml's. Slow on a loaded 2-core machine (the
   * build and the runtime's start): call once per file.
   */
  static async start(label: string, build: "local" | "production" = "local", vars: Record<string, string> = {}): Promise<LocalRuntime> {
    const dir = mkdtempSync(join(tmpdir(), `oplife-batches-${label}-`));
    // The admin's dev sign-in page answers 200 once the Worker serves (DevServer's env file turns it on).
    const entry = build === "local" ? { entry: LOCAL_ENTRY } : {};
    const dev = new DevServer({ dir, label, config: WRANGLER_TOML, ...entry, readyPath: "/admin/sign-in", extraSeedSql: "", vars });
    const runtime = new LocalRuntime(dev, dir);
    try {
      await dev.prepare();
      await dev.start(240_000);
    } catch (e) {
      await runtime.stop();
      throw e;
    }
    return runtime;
  }

  /** `POST /api/v1/runs` for demo.work with the seeded token; the new run's id. */
  async createRun(input: Record<string, number>): Promise<string> {
    const { status, id } = await this.client.createRun("demo.work", input);
    if (status !== 202 || id === null) throw new Error(`POST /api/v1/runs answered ${status} without a new run`);
    return id;
  }

  /** `GET /api/v1/runs/{id}`. */
  async run(id: string): Promise<ApiRun> {
    const res = await fetch(`${this.dev.base}/api/v1/runs/${encodeURIComponent(id)}`, {
      headers: { authorization: `Bearer ${this.dev.token}` },
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`GET /api/v1/runs/${id}: HTTP ${res.status}: ${text.slice(0, 300)}`);
    return (JSON.parse(text) as { run: ApiRun }).run;
  }

  /**
   * Poll the run until `accept` holds. Throws naming `what` and the last state
   * seen after `timeoutMs`, or at once if the run ends without `accept` holding
   * (terminal is forever: it never will).
   */
  async waitForRun(id: string, what: string, accept: (run: ApiRun) => boolean, timeoutMs: number): Promise<ApiRun> {
    const deadline = Date.now() + timeoutMs;
    let last: ApiRun | undefined;
    for (;;) {
      // A request may fail while the runtime restarts; the deadline bounds the wait.
      last = (await this.run(id).catch(() => undefined)) ?? last;
      if (last && accept(last)) return last;
      if (last?.status === "completed") {
        throw new Error(
          `run ${id} ended before it became ${what}: ${last.outcome} ${last.reasonCode ?? ""} at attempt ${last.attempt} of ${last.maxAttempts}`,
        );
      }
      if (Date.now() >= deadline) {
        throw new Error(`run ${id} did not become ${what} within ${timeoutMs / 1000} s; last seen: ${JSON.stringify(last)}`);
      }
      await sleep(POLL_MS);
    }
  }

  /** Wait until the run is completed (any outcome). */
  waitTerminal(id: string, timeoutMs: number): Promise<ApiRun> {
    return this.waitForRun(id, "completed", (r) => r.status === "completed", timeoutMs);
  }

  /** Every audit event of these runs, per run, in order (the API's run history, `GET /api/v1/runs/{id}/events`). */
  async auditTrails(ids: readonly string[]): Promise<Map<string, AuditRow[]>> {
    const out = new Map<string, AuditRow[]>();
    for (const id of ids) {
      const res = await fetch(`${this.dev.base}/api/v1/runs/${encodeURIComponent(id)}/events`, {
        headers: { authorization: `Bearer ${this.dev.token}` },
      });
      if (!res.ok) throw new Error(`GET /api/v1/runs/${id}/events: HTTP ${res.status}: ${(await res.text()).slice(0, 300)}`);
      const body = (await res.json()) as {
        events: { id: string; action: string; actor: string; createdAt: string; metadata: Record<string, unknown> | null }[];
      };
      out.set(
        id,
        body.events.map((e) => ({ id: e.id, runId: id, actor: e.actor, action: e.action, metadata: e.metadata, createdAt: Date.parse(e.createdAt) })),
      );
    }
    return out;
  }

  /** SIGKILL the runtime (launcher, wrangler, workerd): no shutdown, no flush; its local queues are lost. */
  kill(): Promise<void> {
    return this.dev.kill();
  }

  /** Start it again on the same state and port (the Durable Objects' storage and alarms survive). */
  restart(): Promise<void> {
    return this.dev.start(240_000);
  }

  /** Stop the runtime, keep its wrangler output in artifacts/batches/, remove its state. */
  async stop(): Promise<void> {
    await this.dev.stop();
    if (existsSync(this.dev.logFile)) {
      mkdirSync(LOG_DIR, { recursive: true });
      copyFileSync(this.dev.logFile, join(LOG_DIR, `${this.dev.opts.label}.log`));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
