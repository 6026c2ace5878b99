/**
 * Running `npm run oplife -- …` as a person would, against a local D1 kept in
 * a temporary `--persist-to` directory, with wrangler kept offline (no
 * telemetry, no update check). Output is parsed through schemas, not casts.
 */
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { z } from "zod";
import { offlineEnv, ROOT } from "../../browser/support/wrangler";

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

const logDir = mkdtempSync(join(tmpdir(), "oplife-cli-logs-"));

/** `npm run -s oplife -- --persist-to <persistTo> ...args` (no --persist-to when `persistTo` is null). */
export function oplife(persistTo: string | null, ...args: string[]): Promise<CliRun> {
  const full = ["run", "-s", "oplife", "--", ...(persistTo === null ? [] : ["--persist-to", persistTo]), ...args];
  return new Promise((resolve, reject) => {
    const child = spawn("npm", full, { cwd: ROOT, env: offlineEnv(logDir), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parse stdout of a `--json` run that must have succeeded. */
export function jsonOut<S extends z.ZodType>(r: CliRun, schema: S): z.infer<S> {
  if (r.code !== 0) throw new Error(`exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return schema.parse(JSON.parse(r.stdout));
}

/** The `--json` error line on stderr. */
export const errorLine = z.object({ error: z.object({ message: z.string().min(1), exitCode: z.number() }).strict() }).strict();

export function jsonError(r: CliRun): { message: string; exitCode: number } {
  const line = r.stderr.trim().split("\n").at(-1) ?? "";
  return errorLine.parse(JSON.parse(line)).error;
}

const iso = z.iso.datetime();

export const workspaceJson = z.object({ id: z.string().regex(/^ws_\w+$/), slug: z.string(), name: z.string(), createdAt: iso }).strict();
export const workspaceListJson = z.array(workspaceJson.extend({ members: z.number(), owners: z.number() }).strict());
export const memberAddedJson = z
  .object({ workspace: z.string(), userId: z.string(), email: z.string(), name: z.string(), role: z.string(), newUser: z.boolean() })
  .strict();
export const memberListJson = z.array(z.object({ userId: z.string(), email: z.string(), name: z.string(), role: z.string(), addedAt: iso }).strict());
export const tokenCreatedJson = z
  .object({ id: z.string().regex(/^tok_[0-9a-f]{32}$/), workspace: z.string(), name: z.string(), createdAt: iso, token: z.string().regex(/^olt_[A-Za-z0-9_-]{43}$/) })
  .strict();
export const tokenListJson = z.array(
  z.object({ id: z.string(), name: z.string(), createdAt: iso, lastUsedAt: iso.nullable(), revokedAt: iso.nullable(), revoked: z.boolean() }).strict(),
);
