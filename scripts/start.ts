/**
 * `npm start`: a working local system in one command. Applies the D1
 * migrations to the local database, seeds the demo data, then runs
 * `wrangler dev --test-scheduled` on the local build's entry (LOCAL_ENTRY:
 * production's Worker plus demo.work and the fault hooks; the cron sweep can be fired at
 * /__scheduled) on PORT (default 8787) until interrupted, with the admin's
 * dev sign-in enabled (see lib/local-secrets.ts). The URLs, the demo token
 * and a ready-to-paste curl are printed once the server answers.
 */
import { LOCAL_ENTRY, runWrangler, shown, spawnWrangler, UsageError } from "./lib/project";
import { localSecrets } from "./lib/local-secrets";
import { lastTable, whenAnswering } from "./lib/quiet";
import { devPort, resolveDemoToken, seedLocalDatabase, seedSummary } from "./lib/seed";
import { generatedDeploymentStatus } from "./lib/wrangler-deployment";

async function main(): Promise<number> {
  const port = devPort();

  const generated = await generatedDeploymentStatus();
  if (!generated.fresh) console.warn(`warning: ${generated.problem} (the Worker checks its contract against this copy)`);

  // Captured: wrangler reprints the whole table after every migration. One
  // final table is shown; all of it only when applying fails.
  console.log("› wrangler d1 migrations apply DB --local");
  const migrate = await runWrangler(["d1", "migrations", "apply", "DB", "--local"]);
  if (migrate.code !== 0) {
    process.stderr.write(migrate.stdout + migrate.stderr);
    console.error(`start: applying local migrations failed (exit ${migrate.code})`);
    return migrate.code;
  }
  console.log(lastTable(migrate.stdout) ?? "No migrations to apply: the local D1 is up to date.");

  console.log("› seeding demo data (wrangler d1 execute DB --local --file …)");
  const token = resolveDemoToken();
  await seedLocalDatabase(token.token);

  const secrets = localSecrets();
  console.log(secrets.note);
  const args = ["dev", LOCAL_ENTRY, "--test-scheduled", "--port", String(port), ...secrets.args];
  console.log(`› wrangler ${args.map((a) => (a.startsWith("/") ? shown(a) : a)).join(" ")}`);
  const dev = spawnWrangler(args, "inherit");
  // A terminal's Ctrl-C reaches the whole process group anyway; forwarding
  // covers a signal sent to this process alone (a supervisor, `kill <pid>`).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill(signal);
    });
  }
  let running = true;
  const exited = new Promise<number>((resolve, reject) => {
    dev.on("error", (e) => {
      running = false;
      reject(e);
    });
    dev.on("exit", (code, signal) => {
      running = false;
      resolve(code ?? (signal === "SIGINT" || signal === "SIGTERM" ? 0 : 1));
    });
  });
  // Settled below (returned); this only keeps a spawn error from counting as unhandled meanwhile.
  exited.catch(() => {});
  // What to click and paste, once the server answers: printed at spawn time it
  // would scroll away under wrangler's start-up and invite a curl that fails.
  if (await whenAnswering(`http://localhost:${port}/admin/sign-in`, () => running)) {
    console.log(seedSummary(token, port));
    if (secrets.args.length > 0) console.log(`Sign in to the admin at http://localhost:${port}/admin/sign-in as any demo user.\n`);
  }
  return exited;
}

try {
  process.exitCode = await main();
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`start: ${e.message}`);
  process.exitCode = 2;
}
