/**
 * The CLI's way to the database: `wrangler d1 execute DB` against the local
 * D1 (`--local`, optionally `--persist-to <dir>`, the store `wrangler dev`
 * and `npm start` use) or the deployed one (`--remote`, with the account
 * wrangler is logged in to). wrangler cannot bind parameters, so the shared
 * statements (src/tenancy) are inlined as SQL literals here.
 *
 * A write goes as one `--file`: locally wrangler runs the file as one D1
 * batch (a transaction), remotely as one import, which wrangler documents
 * as all-or-nothing too ("if the execution fails to complete, your DB will
 * return to its original state", printed by `d1 execute --remote --file`).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SqlStatement, SqlValue } from "../../src/db/statements";
import { runWrangler } from "../lib/project";
import { sqlString } from "../lib/seed";

export interface Target {
  remote: boolean;
  /** Local only: wrangler's --persist-to (default: .wrangler/state). */
  persistTo?: string | undefined;
}

/** The database could not be reached or refused a statement; the CLI exits 1 with wrangler's own words. */
export class DatabaseError extends Error {
  override name = "DatabaseError";
}

function literal(value: SqlValue): string {
  if (value === null) return "NULL";
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new Error(`only integers are inlined, got ${value}`);
    return String(value);
  }
  return sqlString(value);
}

/** The statement with each `?` replaced by its value as a SQL literal. */
export function inlineSql(s: SqlStatement): string {
  let i = 0;
  const sql = s.sql.replace(/\?/g, () => {
    if (i >= s.params.length) throw new Error(`more placeholders than values in: ${s.sql}`);
    return literal(s.params[i++]!);
  });
  if (i !== s.params.length) throw new Error(`more values than placeholders in: ${s.sql}`);
  return sql.trim().replace(/;?$/, ";");
}

interface WranglerResult {
  results?: Record<string, unknown>[];
  success?: boolean;
}

async function execute(target: Target, input: ["--command", string] | ["--file", string]): Promise<WranglerResult[]> {
  const where = target.remote ? ["--remote"] : ["--local", ...(target.persistTo ? ["--persist-to", target.persistTo] : [])];
  const r = await runWrangler(["d1", "execute", "DB", ...where, ...input, "--json"]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(r.stdout);
  } catch {
    throw new DatabaseError(`wrangler d1 execute failed (exit ${r.code}): ${(r.stderr || r.stdout).trim() || "no output"}`);
  }
  if (r.code !== 0 || !Array.isArray(parsed)) {
    const text =
      typeof parsed === "object" && parsed !== null && "error" in parsed ? JSON.stringify((parsed as { error: unknown }).error) : r.stdout.trim();
    throw new DatabaseError(`wrangler d1 execute failed (exit ${r.code}): ${text}`);
  }
  return parsed as WranglerResult[];
}

/** Rows of one read. */
export async function read<T>(target: Target, s: SqlStatement): Promise<T[]> {
  const [rows] = await readAll(target, [s]);
  return (rows ?? []) as T[];
}

/** Rows of each read, in one wrangler call (each call costs seconds: wrangler starts a local runtime or reaches the API). */
export async function readAll(target: Target, statements: SqlStatement[]): Promise<Record<string, unknown>[][]> {
  const results = await execute(target, ["--command", statements.map(inlineSql).join("\n")]);
  return statements.map((_, i) => results[i]?.results ?? []);
}

/**
 * Apply `statements` all-or-nothing, then answer `check` (read after them,
 * in the same batch when local). The tenancy writes are guarded, so a write
 * that lost a race applies nothing; `check` tells the caller which it was.
 */
export async function write<T>(target: Target, statements: SqlStatement[], check: SqlStatement): Promise<T[]> {
  const dir = mkdtempSync(join(tmpdir(), "oplife-cli-"));
  try {
    const file = join(dir, "write.sql");
    writeFileSync(file, [...statements, check].map(inlineSql).join("\n") + "\n", { mode: 0o600 });
    const results = await execute(target, ["--file", file]);
    // Locally every statement's result comes back; a remote import answers with a summary only.
    if (results.length === statements.length + 1) return (results.at(-1)?.results ?? []) as T[];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return read<T>(target, check);
}
