/** Shared statements (./statements) on the Worker's D1 binding. */
import type { SqlStatement } from "./statements";

export function prepared(db: D1Database, s: SqlStatement): D1PreparedStatement {
  return db.prepare(s.sql).bind(...s.params);
}

/** Run statements as one D1 batch: a transaction, so either all of them apply or none. */
export function runBatch(db: D1Database, statements: SqlStatement[]): Promise<D1Result[]> {
  return db.batch(statements.map((s) => prepared(db, s)));
}
