/**
 * The README's "Deploying" section, checked as far as it can be without a
 * Cloudflare account: the Worker bundles for deploy (`wrangler deploy
 * --dry-run`, which needs no login and sends nothing), and every `npm run
 * oplife` command the README shows exists with the flags it uses.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runWrangler, offlineEnv, ROOT } from "../browser/support/wrangler";
import { run } from "./support/run";

describe("deploying", () => {
  it("wrangler deploy --dry-run bundles the Worker with every binding the README's steps create", async () => {
    const dir = mkdtempSync(join(tmpdir(), "oplife-deploy-"));
    try {
      const r = await runWrangler(["deploy", "--dry-run", "--outdir", join(dir, "out")], offlineEnv(dir));
      expect(r.code, r.output).toBe(0);
      expect(existsSync(join(dir, "out", "index.js"))).toBe(true);
      for (const binding of ["env.DB (oplife)", "env.OPERATIONS_QUEUE (operations)", "env.OPERATIONS_DLQ (operations-dlq)", "env.RUN_TRACKER (RunTracker)"]) {
        expect(r.output).toContain(binding);
      }
      // Dev sign-in is never part of the deployed configuration.
      expect(r.output).not.toContain("DEV_SIGN_IN");
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
