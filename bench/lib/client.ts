/** HTTP to the bench Worker: the production API (with the seeded token) and the /__bench routes. */
import type { DevServer } from "./dev";

export class BenchClient {
  constructor(private readonly dev: DevServer) {}

  async bench<T>(path: string, body?: unknown, timeoutMs = 60_000): Promise<T> {
    const res = await fetch(`${this.dev.base}/__bench${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? null : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`/__bench${path}: HTTP ${res.status}: ${text.slice(0, 500)}`);
    return JSON.parse(text) as T;
  }

  async sql<T = Record<string, unknown>>(sql: string, params: (string | number | null)[] = [], timeoutMs = 120_000): Promise<T[]> {
    const r = await this.bench<{ results: T[] }>("/sql", { sql, params }, timeoutMs);
    return r.results;
  }

  async sqlMeta(sql: string, params: (string | number | null)[] = [], timeoutMs = 600_000) {
    return this.bench<{ results: unknown[]; meta: { rows_read: number; rows_written: number; changes: number }; ms: number }>(
      "/sql",
      { sql, params },
      timeoutMs,
    );
  }

  /** POST /api/v1/runs with the seeded token. */
  async createRun(type: string, input: unknown, opts: { idempotencyKey?: string; timeoutMs?: number } = {}): Promise<{ status: number; id: string | null }> {
    const res = await fetch(`${this.dev.base}/api/v1/runs`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${this.dev.token}`,
        "content-type": "application/json",
        ...(opts.idempotencyKey ? { "idempotency-key": opts.idempotencyKey } : {}),
      },
      body: JSON.stringify({ type, input }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 30_000),
    });
    const text = await res.text();
    if (res.status !== 202 && res.status !== 200) throw new Error(`POST /api/v1/runs: HTTP ${res.status}: ${text.slice(0, 300)}`);
    const parsed = JSON.parse(text) as { run?: { id?: string } };
    return { status: res.status, id: parsed.run?.id ?? null };
  }

  /**
   * Fire the cron: miniflare's trigger endpoint dispatches a real scheduled
   * event (`scheduled()` with this cron) to the Worker, as the platform would.
   */
  async scheduled(): Promise<number> {
    const started = Date.now();
    const res = await fetch(`${this.dev.base}/cdn-cgi/local/scheduled?cron=${encodeURIComponent("* * * * *")}`, {
      signal: AbortSignal.timeout(120_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`/cdn-cgi/local/scheduled: HTTP ${res.status}: ${text.slice(0, 200)}`);
    return Date.now() - started;
  }

  counters(): Promise<Counters> {
    return this.bench<Counters>("/counters");
  }

  resetCounters(): Promise<unknown> {
    return this.bench("/counters/reset", {});
  }
}

export interface Counters {
  d1: { rowsRead: number; rowsWritten: number; roundTrips: number };
  d1Faults: { beforeCommit: number; afterCommit: number };
  doRpc: Record<string, number>;
  doStorage: Record<string, number>;
  doAlarms: number;
  doAlarmsSuppressed: number;
  queueSent: Record<string, number>;
  queueDelivered: Record<string, number>;
  queueRetried: Record<string, number>;
  since: number;
  at: number;
}

/** Run `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}
