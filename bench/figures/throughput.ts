/**
 * Figure 5 — throughput and overhead. In one local runtime (one process),
 * side by side and in turns:
 * - runs: `bench.noop` runs (a handler that does nothing) accepted through the
 *   API and carried to their terminal state by the whole machinery (D1 run
 *   record and audit events, tracker Durable Object, queue);
 * - bare: messages sent through a bench route to the `bench-bare` queue, whose
 *   consumer does one D1 insert per message and acks.
 * Both queues batch alike (max_batch_size 10, max_batch_timeout 2 s), and both
 * are driven by the same client concurrency. Rate = items / (last done − first
 * accepted), server clocks (D1 timestamps); the ratio is the figure.
 *
 * Measured twice, in two instances: with the instance's state on disk, as
 * `npm start` keeps it, and in memory (`/dev/shm`, when the machine has it).
 * On disk a run's time is mostly the local runtime's SQLite commits (its
 * tracker's, its new object's database, D1's: a run makes about 11 times the
 * file syncs of a bare message); in memory what is left is the CPU of the one
 * runtime thread. BENCHMARKS.md gives both and why.
 */
import { pool, type BenchClient } from "../lib/client";
import { WORKSPACE } from "../lib/dev";
import { memoryStateAvailable, waitFor, withInstance, type StateStorage } from "../lib/instance";

const CONCURRENCY = 8;

export interface Round {
  kind: "runs" | "bare";
  n: number;
  spanMs: number;
  perSecond: number;
}

/** One instance's rounds, alternating runs and bare, and their rates over all rounds. */
export interface ThroughputSample {
  storage: StateStorage;
  rounds: Round[];
  runsPerSecond: number;
  barePerSecond: number;
  ratio: number;
}

/** `memory` is null when the machine has no `/dev/shm` (it is then not measured). */
export interface ThroughputResult {
  disk: ThroughputSample;
  memory: ThroughputSample | null;
}

/** `n` noop runs through the API, at CONCURRENCY, until all are terminal (each must succeed). */
export async function runsRound(client: BenchClient, n: number): Promise<Round> {
  const [mark] = await client.sql<{ id: string | null }>("SELECT MAX(id) AS id FROM operation_runs WHERE workspace_id = ?", [WORKSPACE]);
  const after = mark?.id ?? "";
  await pool(Array.from({ length: n }), CONCURRENCY, () => client.createRun("bench.noop", {}));
  const span = await waitFor(`${n} noop runs terminal`, 600_000, 250, async () => {
    const [r] = await client.sql<{ n: number; done: number; first: number; last: number }>(
      `SELECT COUNT(*) AS n, SUM(status = 'completed') AS done, MIN(created_at) AS first, MAX(completed_at) AS last
         FROM operation_runs WHERE workspace_id = ? AND id > ?`,
      [WORKSPACE, after],
    );
    return r && r.n === n && r.done === n ? r.last - r.first : undefined;
  });
  const [bad] = await client.sql<{ n: number }>(
    "SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND id > ? AND outcome <> 'succeeded'",
    [WORKSPACE, after],
  );
  if ((bad?.n ?? 0) > 0) throw new Error(`${bad?.n} noop runs did not succeed`);
  return { kind: "runs", n, spanMs: span, perSecond: (n * 1000) / span };
}

/** `n` bare messages through the bench route and its one-insert consumer, until all are consumed. */
export async function bareRound(client: BenchClient, n: number): Promise<Round> {
  await client.sql("DELETE FROM bench_bare");
  await pool(Array.from({ length: n }), CONCURRENCY, () => client.bench("/bare", {}));
  const span = await waitFor(`${n} bare messages consumed`, 600_000, 250, async () => {
    const [r] = await client.sql<{ n: number; first: number; last: number }>(
      "SELECT COUNT(*) AS n, MIN(sent_at) AS first, MAX(done_at) AS last FROM bench_bare",
    );
    return r && r.n >= n ? r.last - r.first : undefined;
  });
  return { kind: "bare", n, spanMs: span, perSecond: (n * 1000) / span };
}

/** Both storages in turn (disk, then memory): `rounds` rounds of `n` items of each kind per instance. */
export async function throughput(n: number, rounds = 2): Promise<ThroughputResult> {
  const disk = await throughputIn("disk", n, rounds);
  const memory = memoryStateAvailable() ? await throughputIn("memory", n, rounds) : null;
  return { disk, memory };
}

async function throughputIn(storage: StateStorage, n: number, rounds: number): Promise<ThroughputSample> {
  return withInstance(`throughput-${storage}`, {}, async (_dev, client) => {
    // Warm-up both paths.
    await runsRound(client, 20);
    await bareRound(client, 20);
    const out: Round[] = [];
    for (let i = 0; i < rounds; i++) {
      out.push(await runsRound(client, n));
      out.push(await bareRound(client, n));
    }
    const total = (kind: Round["kind"]) => {
      const rs = out.filter((r) => r.kind === kind);
      return (rs.reduce((a, r) => a + r.n, 0) * 1000) / rs.reduce((a, r) => a + r.spanMs, 0);
    };
    const runsPerSecond = total("runs");
    const barePerSecond = total("bare");
    return { storage, rounds: out, runsPerSecond, barePerSecond, ratio: runsPerSecond / barePerSecond };
  }, storage);
}
