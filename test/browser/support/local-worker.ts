/**
 * A real `wrangler dev` for the browser tests, in its own world: a temporary
 * `--persist-to` directory (never the developer's .wrangler/state), a
 * temporary `--env-file` with dev sign-in and a random session secret, a free
 * port on 127.0.0.1. Migrated with `wrangler d1 migrations apply` and seeded
 * with the project's own seed SQL (scripts/lib/seed.ts) before it starts.
 */
import { randomBytes } from "node:crypto";
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { LOCAL_ENTRY } from "../../../scripts/lib/project";
import { hashToken, newDemoToken, seedSql } from "../../../scripts/lib/seed";
import { executeSql, killGroup, offlineEnv, ROOT, runWrangler, signalGroup, spawnWranglerGroup, type LocalWorker } from "./wrangler";

export const ARTIFACTS = resolve(ROOT, "artifacts");
export const WRANGLER_LOG = resolve(ARTIFACTS, "wrangler-dev.log");
const HTMX = resolve(ROOT, "public/vendor/htmx.min.js");
const READY_TIMEOUT_MS = 90_000;

/** A port the OS says is free now (wrangler binds it a moment later; nothing else here races for it). */
function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => (port > 0 ? resolvePort(port) : reject(new Error("no free port"))));
    });
  });
}

/** The start and the end of what a process said: where wrangler puts its error and its last words. */
function excerpt(output: string): string {
  return output.length <= 4_000 ? output : `${output.slice(0, 1_500)}\n[…]\n${output.slice(-2_500)}`;
}

export interface RunningWorker {
  worker: LocalWorker;
  stop(): Promise<void>;
}

export async function startLocalWorker(): Promise<RunningWorker> {
  if (!existsSync(HTMX)) {
    throw new Error(`public/vendor/htmx.min.js is missing: run \`npm run assets\` (npm install runs it too). The admin pages need it.`);
  }
  const dir = mkdtempSync(join(tmpdir(), "oplife-browser-"));
  const persistTo = join(dir, "state");
  const logDir = join(dir, "logs");
  const envFile = join(dir, "dev.env");
  mkdirSync(logDir);
  // 30 random bytes are exactly 40 base64url characters.
  writeFileSync(envFile, `DEV_SIGN_IN=1\nSESSION_SECRET=${randomBytes(30).toString("base64url")}\n`, { mode: 0o600 });
  const env = offlineEnv(logDir);

  let pgid: number | undefined;
  const killOnExit = () => {
    // Last resort if the run dies before teardown: exit handlers must be synchronous.
    if (pgid !== undefined) signalGroup(pgid, "SIGKILL");
  };
  const stop = async () => {
    process.off("exit", killOnExit);
    if (pgid !== undefined) await killGroup(pgid);
    pgid = undefined;
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    const migrate = await runWrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistTo], env);
    if (migrate.code !== 0) throw new Error(`wrangler d1 migrations apply failed (exit ${migrate.code}):\n${migrate.output}`);

    const demoToken = newDemoToken();
    await executeSql({ persistTo, logDir }, seedSql(hashToken(demoToken), Date.now()));

    const [port, inspectorPort] = [await freePort(), await freePort()];
    const baseUrl = `http://127.0.0.1:${port}`;
    mkdirSync(ARTIFACTS, { recursive: true });
    const log = createWriteStream(WRANGLER_LOG);
    // What it says until it is ready, for the error message if it never is (all of it goes to the log file).
    let startup = "";
    let ready = false;
    const child = spawnWranglerGroup(
      [
        "dev",
        LOCAL_ENTRY,
        "--ip", "127.0.0.1",
        "--port", String(port),
        "--inspector-port", String(inspectorPort),
        "--persist-to", persistTo,
        "--env-file", envFile,
        "--test-scheduled",
      ],
      env,
    );
    pgid = child.pid;
    process.on("exit", killOnExit);
    const keep = (d: Buffer) => {
      log.write(d);
      if (!ready) startup += d.toString();
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    child.on("close", () => log.end());
    let spawnError: Error | undefined;
    child.on("error", (e) => (spawnError = e));

    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (spawnError) throw new Error(`could not start wrangler dev: ${spawnError.message}`);
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`wrangler dev exited (${child.exitCode ?? child.signalCode}) before serving ${baseUrl}. Its output (all of it in ${WRANGLER_LOG}):\n${excerpt(startup)}`);
      }
      // A refused or hung connection only means "not listening yet"; the deadline below bounds the wait.
      const res = await fetch(`${baseUrl}/admin/sign-in`, { signal: AbortSignal.timeout(5_000) }).catch(() => null);
      if (res) {
        const body = await res.text();
        if (res.status === 200) {
          ready = true;
          break;
        }
        throw new Error(`wrangler dev answered GET /admin/sign-in with ${res.status}, not 200 (dev sign-in should be on):\n${body.slice(0, 1_000)}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`wrangler dev did not serve ${baseUrl}/admin/sign-in within ${READY_TIMEOUT_MS / 1000} s. Its output (all of it in ${WRANGLER_LOG}):\n${excerpt(startup)}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    return { worker: { baseUrl, persistTo, logDir, demoToken }, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}
