/**
 * Generate src/generated/deployment.ts from wrangler.toml, so the Worker (which
 * cannot read wrangler.toml at runtime) checks its timing contract against the
 * queue and cron settings it was deployed with.
 *
 *   tsx scripts/gen-deployment.ts           write the file (part of `npm run types`)
 *   tsx scripts/gen-deployment.ts --check   exit 1 if the committed file is stale
 *   --config <path> / --out <path>          another input / output (used by tests)
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { GENERATED_DEPLOYMENT, shown, UsageError, WRANGLER_TOML } from "./lib/project";
import { generatedDeploymentStatus } from "./lib/wrangler-deployment";

const USAGE = "usage: gen-deployment [--check] [--config <wrangler config>] [--out <file>]";

function parseArgs(argv: string[]): { check: boolean; configPath: string; outPath: string } {
  let check = false;
  let configPath = WRANGLER_TOML;
  let outPath = GENERATED_DEPLOYMENT;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${arg} needs a value\n${USAGE}`);
      return resolve(process.cwd(), v);
    };
    if (arg === "--check") check = true;
    else if (arg === "--config") configPath = value();
    else if (arg === "--out") outPath = value();
    else throw new UsageError(`unknown argument "${arg}"\n${USAGE}`);
  }
  return { check, configPath, outPath };
}

async function main(argv: string[]): Promise<number> {
  const { check, configPath, outPath } = parseArgs(argv);
  const status = await generatedDeploymentStatus(configPath, outPath);
  if (check) {
    if (status.fresh) {
      console.log(`${shown(outPath)} is up to date with ${shown(configPath)}.`);
      return 0;
    }
    console.error(status.problem);
    return 1;
  }
  if (status.fresh) {
    console.log(`${shown(outPath)} is already up to date with ${shown(configPath)}.`);
  } else {
    writeFileSync(outPath, status.expected);
    console.log(`Wrote ${shown(outPath)} from ${shown(configPath)}.`);
  }
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`gen-deployment: ${e.message}`);
  process.exitCode = 2;
}
