/**
 * Demo data for local runs (`npm start`, `npm run seed`), written to the local
 * D1 with `wrangler d1 execute DB --local --file`, the same store `wrangler dev`
 * serves. Idempotent: every insert is an upsert on a natural key, so seeding
 * twice leaves one workspace, one user per email, one demo token.
 */
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { MEMBERSHIP_ROLES, type MembershipRole } from "../../src/db/schema";
import { ROOT, runWrangler, shown, UsageError } from "./project";

/** The generated demo token survives restarts here (.wrangler/ is gitignored). */
export const DEMO_TOKEN_FILE = resolve(ROOT, ".wrangler/state/demo-token");
export const DEMO_TOKEN_ID = "tok_demo";

interface SeedWorkspace {
  id: string;
  slug: string;
  name: string;
  members: { id: string; email: string; name: string; role: MembershipRole }[];
}

const roleName = (role: MembershipRole): string => role[0]!.toUpperCase() + role.slice(1);

export const DEMO_WORKSPACES: SeedWorkspace[] = [
  {
    id: "ws_demo",
    slug: "demo",
    name: "Demo workspace",
    members: MEMBERSHIP_ROLES.map((role) => ({
      id: `usr_demo_${role}`,
      email: `${role}@demo.test`,
      name: `Demo ${roleName(role)}`,
      role,
    })),
  },
  {
    // A second tenant: its runs must never show up for the demo workspace.
    id: "ws_other",
    slug: "other",
    name: "Other workspace",
    members: [{ id: "usr_other_owner", email: "owner@other.test", name: "Other Owner", role: "owner" }],
  },
];

/** A SQL string literal: single quotes doubled, NUL refused (SQLite would truncate at it). */
export function sqlString(value: string): string {
  if (value.includes("\0")) throw new Error("NUL byte in a SQL value");
  return `'${value.replaceAll("'", "''")}'`;
}

/** A POSIX shell single-quoted word, for the copy-paste curl example. */
export function shellQuote(value: string): string {
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

/** SHA-256 of the token's UTF-8 bytes, lowercase hex: all the database ever holds (api_tokens.token_hash). */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

export function newDemoToken(): string {
  return `olt_${randomBytes(32).toString("base64url")}`;
}

export interface DemoToken {
  token: string;
  source: "DEMO_API_TOKEN" | "saved" | "new";
}

/**
 * DEMO_API_TOKEN when set; else the token saved by an earlier seed; else a new
 * random one, saved so the next `npm start` prints (and stores) the same token.
 */
export function resolveDemoToken(env: NodeJS.ProcessEnv = process.env): DemoToken {
  const fromEnv = env.DEMO_API_TOKEN;
  if (fromEnv !== undefined && fromEnv !== "") {
    if (!/^[\x21-\x7e]+$/.test(fromEnv)) throw new UsageError("DEMO_API_TOKEN must be printable ASCII without spaces");
    return { token: fromEnv, source: "DEMO_API_TOKEN" };
  }
  if (existsSync(DEMO_TOKEN_FILE)) {
    const saved = readFileSync(DEMO_TOKEN_FILE, "utf8").trim();
    if (/^olt_[A-Za-z0-9_-]{20,}$/.test(saved)) return { token: saved, source: "saved" };
  }
  const token = newDemoToken();
  mkdirSync(dirname(DEMO_TOKEN_FILE), { recursive: true });
  writeFileSync(DEMO_TOKEN_FILE, `${token}\n`, { mode: 0o600 });
  return { token, source: "new" };
}

/** The whole seed as one SQL script (upserts only; `now` is the creation time of new rows). */
export function seedSql(tokenHash: string, now: number): string {
  const lines: string[] = [];
  for (const ws of DEMO_WORKSPACES) {
    lines.push(
      `INSERT INTO workspaces (id, slug, name, created_at) VALUES (${sqlString(ws.id)}, ${sqlString(ws.slug)}, ${sqlString(ws.name)}, ${now})` +
        ` ON CONFLICT(slug) DO UPDATE SET name = excluded.name;`,
    );
    for (const m of ws.members) {
      lines.push(
        `INSERT INTO users (id, email, name, created_at) VALUES (${sqlString(m.id)}, ${sqlString(m.email)}, ${sqlString(m.name)}, ${now})` +
          ` ON CONFLICT(email) DO UPDATE SET name = excluded.name;`,
        // Ids looked up by natural key, so rows created before (with other ids) are reused.
        `INSERT INTO memberships (workspace_id, user_id, role, created_at)` +
          ` SELECT w.id, u.id, ${sqlString(m.role)}, ${now} FROM workspaces w, users u` +
          ` WHERE w.slug = ${sqlString(ws.slug)} AND u.email = ${sqlString(m.email)}` +
          ` ON CONFLICT(workspace_id, user_id) DO UPDATE SET role = excluded.role;`,
      );
    }
  }
  // One demo token per database: re-seeding with another token replaces its hash (and un-revokes it).
  lines.push(
    `INSERT INTO api_tokens (id, workspace_id, name, token_hash, created_at)` +
      ` SELECT ${sqlString(DEMO_TOKEN_ID)}, w.id, 'Demo token (npm start)', ${sqlString(tokenHash)}, ${now} FROM workspaces w WHERE w.slug = 'demo'` +
      ` ON CONFLICT(id) DO UPDATE SET workspace_id = excluded.workspace_id, token_hash = excluded.token_hash, revoked_at = NULL;`,
  );
  return lines.join("\n") + "\n";
}

/** Execute the seed against the local D1 (migrations must already be applied). */
export async function seedLocalDatabase(token: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "oplife-seed-"));
  const file = join(dir, "seed.sql");
  try {
    writeFileSync(file, seedSql(hashToken(token), Date.now()));
    const r = await runWrangler(["d1", "execute", "DB", "--local", "--file", file]);
    if (r.code !== 0) {
      throw new Error(`wrangler d1 execute failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The port `wrangler dev` listens on: PORT, else 8787. */
export function devPort(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.PORT;
  if (raw === undefined || raw === "") return 8787;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port < 1 || port > 65_535) throw new UsageError(`PORT must be an integer from 1 to 65535, got "${raw}"`);
  return port;
}

/** What a person needs after seeding: where to click, what to paste. */
export function seedSummary(token: DemoToken, port: number): string {
  const base = `http://localhost:${port}`;
  const body = JSON.stringify({ type: "demo.work", input: { steps: 20, stepMs: 500 } });
  const from =
    token.source === "DEMO_API_TOKEN"
      ? "from DEMO_API_TOKEN"
      : token.source === "saved"
        ? `reused from ${shown(DEMO_TOKEN_FILE)}`
        : `new, saved in ${shown(DEMO_TOKEN_FILE)}`;
  const people = DEMO_WORKSPACES.map((ws) => `"${ws.slug}": ${ws.members.map((m) => `${m.email} (${m.role})`).join(", ")}`);
  return [
    "",
    "Demo data seeded (local D1).",
    ...people.map((p) => `  workspace ${p}`),
    "",
    `  Admin:      ${base}/admin/operations`,
    `  API base:   ${base}/api/v1`,
    `  Demo token: ${token.token}   (${from}; only its SHA-256 is stored)`,
    "",
    "  Create a demo.work run:",
    `  curl -sS -X POST ${base}/api/v1/runs \\`,
    `    -H ${shellQuote(`Authorization: Bearer ${token.token}`)} \\`,
    `    -H 'Content-Type: application/json' \\`,
    `    -d ${shellQuote(body)}`,
    "",
  ].join("\n");
}
