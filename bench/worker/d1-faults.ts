/**
 * D1 faults for the soak: a share of the writes production makes fail, the
 * two ways a write can fail from the caller's side —
 * - before commit: the statement never ran (D1 overloaded, the connection
 *   refused), and the call throws;
 * - after commit: the statement ran and committed, and the answer was lost
 *   (the connection dropped on the way back), and the call throws anyway.
 * A caller cannot tell them apart; the system must converge to the true
 * verdict either way (lifecycle contract v2 section 4: results are kept in the
 * tracker before they are applied to D1).
 *
 * Wraps the binding the bench Worker hands to production (instrument.ts), so
 * production's code is untouched (house style: tests wrap the boundary).
 * Reads are never failed: the soak measures what a lost write does. Each
 * fault is logged as `bench.d1_fault` with the run ids its parameters named,
 * which is how the soak attributes a fault to a run.
 */
import { log } from "../../src/log";

/** Which statements write: the verb that starts them (production writes no CTE-prefixed DML). */
const WRITE = /^\s*(?:insert|update|delete|replace)\b/i;
const RUN_ID = /^run_[0-9A-HJKMNP-TV-Z]{26}$/;

export interface D1FaultCounts {
  beforeCommit: number;
  afterCommit: number;
}

type When = "before_commit" | "after_commit";

interface Injector {
  rate: number;
  random: () => number;
  counts: D1FaultCounts;
}

function runIdsOf(params: readonly unknown[]): string[] {
  return params.filter((p): p is string => typeof p === "string" && RUN_ID.test(p));
}

/** Decide whether this call fails, and how (half before commit, half after). */
function draw(inj: Injector): When | null {
  if (inj.rate <= 0 || inj.random() >= inj.rate) return null;
  return inj.random() < 0.5 ? "before_commit" : "after_commit";
}

function fault(inj: Injector, when: When, runIds: string[]): Error {
  if (when === "before_commit") inj.counts.beforeCommit++;
  else inj.counts.afterCommit++;
  log.warn("bench.d1_fault", { when, runIds });
  // The wording D1 uses for a dropped connection, so production treats it as it would the real one.
  return new Error(`D1_ERROR: Network connection lost. (injected by the bench, ${when.replace("_", " ")})`);
}

/** Run `call`, failing it before or after it commits when the draw says so. */
async function guarded<T>(inj: Injector, writes: boolean, runIds: string[], call: () => Promise<T>): Promise<T> {
  const when = writes ? draw(inj) : null;
  if (when === "before_commit") throw fault(inj, when, runIds);
  const result = await call();
  if (when === "after_commit") throw fault(inj, when, runIds);
  return result;
}

class FaultyStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    readonly sql: string,
    readonly params: readonly unknown[],
    private readonly inj: Injector,
  ) {}

  get writes(): boolean {
    return WRITE.test(this.sql);
  }

  bind(...values: unknown[]): FaultyStatement {
    return new FaultyStatement(this.inner.bind(...values), this.sql, values, this.inj);
  }

  first<T = Record<string, unknown>>(column?: string): Promise<T | null> {
    return guarded(this.inj, this.writes, runIdsOf(this.params), () =>
      column === undefined ? this.inner.first<T>() : this.inner.first<T>(column),
    );
  }

  all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return guarded(this.inj, this.writes, runIdsOf(this.params), () => this.inner.all<T>());
  }

  run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    return guarded(this.inj, this.writes, runIdsOf(this.params), () => this.inner.run<T>());
  }

  raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[]> {
    return guarded(this.inj, this.writes, runIdsOf(this.params), () =>
      options?.columnNames ? (this.inner.raw<T>({ columnNames: true }) as unknown as Promise<T[]>) : this.inner.raw<T>(),
    );
  }
}

/** BENCH_D1_FAULT_RATE as a share (0 when unset); a value outside 0–1 is refused, naming it. */
export function faultRate(value: string | undefined): number {
  if (value === undefined || value === "") return 0;
  const rate = Number(value);
  if (!(rate >= 0 && rate <= 1)) throw new Error(`BENCH_D1_FAULT_RATE must be a number from 0 to 1, got "${value}"`);
  return rate;
}

/**
 * `db` with a share `rate` (0–1) of its writes failing: statements whose SQL
 * starts with INSERT, UPDATE, DELETE or REPLACE, and batches holding one. A
 * batch is D1's transaction, so it fails or commits as a whole, like the real one.
 */
export function faultyDb(db: D1Database, rate: number, counts: D1FaultCounts, random: () => number = Math.random): D1Database {
  const inj: Injector = { rate, random, counts };
  const wrapped = {
    prepare: (query: string) => new FaultyStatement(db.prepare(query), query, [], inj),
    batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
      const faulty = statements.filter((s): s is D1PreparedStatement & FaultyStatement => s instanceof FaultyStatement);
      const writes = faulty.some((s) => s.writes);
      const runIds = [...new Set(faulty.flatMap((s) => runIdsOf(s.params)))];
      const inner = statements.map((s) => (s instanceof FaultyStatement ? s.inner : s));
      return guarded(inj, writes, runIds, () => db.batch<T>(inner));
    },
    exec: (query: string) => guarded(inj, WRITE.test(query), [], () => db.exec(query)),
    withSession: (constraint?: string) => db.withSession(constraint),
    dump: () => db.dump(),
  };
  // Implements the D1Database surface production uses; the cast stays here (as in src/runs/metered-db.ts).
  return wrapped as unknown as D1Database;
}
