/**
 * `npm run seed`: (re)seed the local D1 with the demo workspaces, users and
 * API token, then print the URLs, the token and a curl example. Apply the
 * migrations first (`npm run db:migrate:local`; `npm start` does both).
 */
import { UsageError } from "./lib/project";
import { devPort, resolveDemoToken, seedLocalDatabase, seedSummary } from "./lib/seed";

try {
  const port = devPort();
  const token = resolveDemoToken();
  await seedLocalDatabase(token.token);
  console.log(seedSummary(token, port));
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`seed: ${e.message}`);
  process.exitCode = 2;
}
