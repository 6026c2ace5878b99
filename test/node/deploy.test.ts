/**
 * The README's "Deploying" section, checked as far as it can be without a
 * Cloudflare account: the Worker bundles for deploy (`wrangler deploy
 * --dry-run`, which needs no login and sends nothing) without the local
 * build's demo type and fault hooks, and every `npm run oplife` command the
 * README shows exists with the flags it uses.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LOCAL_ENTRY } from "../../scripts/lib/project";
import { runWrangler, offlineEnv, ROOT } from "../browser/support/wrangler";
import { run } from "./support/run";

/**
 * What only local and test builds (src/index.local.ts) may contain: the demo
 * type, its fault inputs and the simulated crash. As code, not prose: esbuild
 * drops comments, so each of these in a bundle is a name the code uses.
 */
const LOCAL_ONLY = ['"demo.work"', "hangAtStep", "dieAtStep", "SimulatedCrash"];
/** Removed everywhere: the heartbeat-silencing hook no type used. */
const REMOVED = ["stopHeartbeats"];

/** `wrangler deploy --dry-run` of `entry` (default: wrangler.toml's main) into `dir`; the bundle's text and wrangler's output. */
async function dryRun(dir: string, entry?: string): Promise<{ bundle: string; output: string }> {
  const out = join(dir, "out");
  const r = await runWrangler(["deploy", "--dry-run", "--outdir", out, ...(entry ? [entry] : [])], offlineEnv(dir));
  expect(r.code, r.output).toBe(0);
  const file = join(out, entry ? "index.local.js" : "index.js");
  expect(existsSync(file), r.output).toBe(true);
  return { bundle: readFileSync(file, "utf8"), output: r.output };
}

describe("deploying", () => {
  it("wrangler deploy --dry-run bundles the Worker with every binding the README's steps create, and no demo type or fault hook", async () => {
    const dir = mkdtempSync(join(tmpdir(), "oplife-deploy-"));
    try {
      const { bundle, output } = await dryRun(dir);
      for (const binding of ["env.DB (oplife)", "env.OPERATIONS_QUEUE (operations)", "env.OPERATIONS_DLQ (operations-dlq)", "env.RUN_TRACKER (RunTracker)", "env.RUN_CREATION_LIMITER"]) {
        expect(output).toContain(binding);
      }
      // Dev sign-in is never part of the deployed configuration.
      expect(output).not.toContain("DEV_SIGN_IN");
      for (const name of [...LOCAL_ONLY, ...REMOVED]) expect(bundle, name).not.toContain(name);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the local build's entry (npm start, the tests, the bench) bundles the demo type and the fault hooks", async () => {
    const dir = mkdtempSync(join(tmpdir(), "oplife-deploy-local-"));
    try {
      const { bundle } = await dryRun(dir, LOCAL_ENTRY);
      // The same search finds them when they are there: the check above cannot pass by looking wrong.
      for (const name of LOCAL_ONLY) expect(bundle, name).toContain(name);
      for (const name of REMOVED) expect(bundle, name).not.toContain(name);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("every `npm run oplife` command in the README exists and takes the flags shown", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const lines = [...readme.matchAll(/^\s*npm run oplife -- (.+?)(?:\s+#.*)?$/gm)].map((m) => m[1]!);
    expect(lines.length).toBeGreaterThanOrEqual(10);
    const byCommand = new Map<string, Set<string>>();
    for (const line of lines) {
      const words = line.replace(/"[^"]*"/g, "x").split(/\s+/).filter((w) => w !== "--remote");
      const [noun, verb] = words;
      expect(noun, line).toMatch(/^[a-z]+$/);
      expect(verb, line).toMatch(/^[a-z-]+$/);
      const flags = byCommand.get(`${noun} ${verb}`) ?? new Set<string>();
      for (const flag of line.matchAll(/(?<=\s|^)--[a-z-]+/g)) flags.add(flag[0]);
      byCommand.set(`${noun} ${verb}`, flags);
    }
    for (const [command, flags] of byCommand) {
      const help = await run("npx", ["tsx", "scripts/cli/oplife.ts", ...command.split(" "), "--help"]);
      expect(help.code, `${command}: ${help.output}`).toBe(0);
      expect(help.stdout).toContain(`Usage: oplife ${command}`);
      for (const flag of flags) expect(help.stdout, `${command} ${flag}`).toContain(flag);
    }
  });
});
