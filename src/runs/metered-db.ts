/**
 * A D1Database that counts what it costs: rows read and written and round
 * trips, summed from D1's own `meta`. The sweep logs these per invocation and
 * the benchmarks print them; nothing estimates what D1 can report.
 * `first()` is served through `all()` because only the latter returns meta.
 */
export interface D1Cost {
  rowsRead: number;
  rowsWritten: number;
  /** Calls that reached D1: a batch counts once, like its network round trip. */
  roundTrips: number;
}

export function emptyCost(): D1Cost {
  return { rowsRead: 0, rowsWritten: 0, roundTrips: 0 };
}

function add(cost: D1Cost, meta: D1Meta | undefined): void {
  cost.rowsRead += meta?.rows_read ?? 0;
  cost.rowsWritten += meta?.rows_written ?? 0;
}

class MeteredStatement {
  constructor(
    readonly inner: D1PreparedStatement,
    private readonly cost: D1Cost,
  ) {}

  bind(...values: unknown[]): MeteredStatement {
    return new MeteredStatement(this.inner.bind(...values), this.cost);
  }

  async first<T = Record<string, unknown>>(column?: string): Promise<T | null> {
    const res = await this.all<Record<string, unknown>>();
    const row = res.results[0];
    if (!row) return null;
    return (column === undefined ? row : row[column]) as T;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    this.cost.roundTrips++;
    const res = await this.inner.all<T>();
    add(this.cost, res.meta);
    return res;
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    this.cost.roundTrips++;
    const res = await this.inner.run<T>();
    add(this.cost, res.meta);
    return res;
  }

  raw<T = unknown[]>(options?: { columnNames?: boolean }): Promise<T[]> {
    this.cost.roundTrips++;
    // raw() has no meta; it is not used on metered paths, but stays correct.
    return options?.columnNames ? (this.inner.raw<T>({ columnNames: true }) as unknown as Promise<T[]>) : this.inner.raw<T>();
  }
}

/** prepare() and batch() over `db` (the binding or a session), counted into `cost`. */
function meteredReads(db: Pick<D1Database, "prepare" | "batch">, cost: D1Cost) {
  return {
    prepare: (query: string) => new MeteredStatement(db.prepare(query), cost),
    async batch<T = unknown>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
      cost.roundTrips++;
      const inner = statements.map((s) => (s instanceof MeteredStatement ? s.inner : s));
      const results = await db.batch<T>(inner);
      for (const r of results) add(cost, r.meta);
      return results;
    },
  };
}

/** Wrap `db`; every statement and batch made through the result, or through a session of it, adds to `cost`. */
export function meteredDb(db: D1Database, cost: D1Cost = emptyCost()): { db: D1Database; cost: D1Cost } {
  const wrapped = {
    ...meteredReads(db, cost),
    exec: (query: string) => {
      cost.roundTrips++;
      return db.exec(query);
    },
    withSession: (constraint?: string) => {
      const session = db.withSession(constraint);
      return { ...meteredReads(session, cost), getBookmark: () => session.getBookmark() };
    },
    dump: () => db.dump(),
  };
  // The wrapper implements the D1Database surface the code uses; the cast is
  // confined here so callers keep the real type.
  return { db: wrapped as unknown as D1Database, cost };
}
