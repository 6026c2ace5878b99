/**
 * `npm start`: a working local system in one command. Applies the D1
 * migrations to the local database, seeds the demo data, then runs
 * `wrangler dev --test-scheduled` (the cron sweep can be fired at
 * /__scheduled) on PORT (default 8787) until interrupted, with the admin's
 * dev sign-in enabled (see lib/local-secrets.ts).
 */
import { runWrangler, spawnWrangler, UsageError } from "./lib/project";
import { localSecrets } from "./lib/local-secrets";
import { devPort, resolveDemoToken, seedLocalDatabase, seedSummary } from "./lib/seed";
import { generatedDeploymentStatus } from "./lib/wrangler-deployment";

async function main(): Promise<number> {
  const port = devPort();

  const generated = await generatedDeploymentStatus();
  if (!generated.fresh) console.warn(`warning: ${generated.problem} (the Worker checks its contract against this copy)`);

  console.log("› wrangler d1 migrations apply DB --local");
  const migrate = await runWrangler(["d1", "migrations", "apply", "DB", "--local"], { inherit: true });
  if (migrate.code !== 0) {
    console.error(`start: applying local migrations failed (exit ${migrate.code})`);
    return migrate.code;
  }

  console.log("› seeding demo data (wrangler d1 execute DB --local --file …)");
  const token = resolveDemoToken();
  await seedLocalDatabase(token.token);
  console.log(seedSummary(token, port));

  const secrets = localSecrets();
  console.log(secrets.note);
  if (secrets.args.length > 0) console.log(`Sign in to the admin at http://localhost:${port}/admin/sign-in as any demo user.`);
  const args = ["dev", "--test-scheduled", "--port", String(port), ...secrets.args];
  console.log(`› wrangler ${args.join(" ")}`);
  const dev = spawnWrangler(args, "inherit");
  // A terminal's Ctrl-C reaches the whole process group anyway; forwarding
  // covers a signal sent to this process alone (a supervisor, `kill <pid>`).
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(signal, () => {
      if (dev.exitCode === null && dev.signalCode === null) dev.kill(signal);
    });
  }
  return new Promise((resolve, reject) => {
    dev.on("error", reject);
    dev.on("exit", (code, signal) => resolve(code ?? (signal === "SIGINT" || signal === "SIGTERM" ? 0 : 1)));
  });
}

try {
  process.exitCode = await main();
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`start: ${e.message}`);
  process.exitCode = 2;
}
