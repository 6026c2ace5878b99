/**
 * `npm run check:lifecycle` as a command: the exit code and the words an
 * operator reads, for the real wrangler.toml, a misaligned fixture, a
 * what-if override and bad input.
 */
import { describe, it } from "vitest";
import { run, tsx } from "./support/run";

const RULE_IDS = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"];

describe.concurrent("check:lifecycle", () => {
  it("exits 0 on the real wrangler.toml and reports every rule T1–T9", async ({ expect }) => {
    const r = await run("npm", ["run", "--silent", "check:lifecycle"]);
    expect(r.code, r.output).toBe(0);
    for (const rule of RULE_IDS) expect(r.stdout).toMatch(new RegExp(`^${rule}\\s+demo\\.work\\s.*\\sOK$`, "m"));
    // T5 in v2: a batch of 10 may hold a dispatch behind the longest timeout on the queue,
    // http.export's 90 s (2 + 5 + 10 + 90 s).
    expect(r.stdout).toMatch(/^T5\s+demo\.work\s+staleQueuedAfterMs\s+120000\s+>\s+.*longest timeoutMs on queue "operations" \(ms\)\s+107000\s+OK$/m);
    for (const rule of RULE_IDS) expect(r.stdout).toMatch(new RegExp(`^${rule}\\s+http\\.export\\s.*\\sOK$`, "m"));
    expect(r.stdout).not.toContain("VIOLATED");
    expect(r.stdout).toContain("src/generated/deployment.ts matches wrangler.toml");
  });

  it("fails T3 with both numbers when the operations queue never redelivers", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--config", "test/node/fixtures/wrangler.max-retries-0.toml");
    expect(r.code, r.output).toBe(1);
    expect(r.stderr).toContain(
      'T3 violated for demo.work: max_retries of queue "operations" (0) must be ≥ one redelivery of a crashed invocation (1)',
    );
    expect(r.stdout).toMatch(/^T3\s+demo\.work\s+max_retries of queue "operations"\s+0\s+≥\s.*\s1\s+VIOLATED$/m);
    // Only T3 disagrees, once per type on that queue; the table still shows the rest holding.
    expect(r.stderr).toContain('T3 violated for http.export: max_retries of queue "operations" (0)');
    expect(r.stderr.match(/violated for/g)).toHaveLength(2);
  });

  it("fails T1 when an override pushes timeoutMs past the consumer's limit", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--override", "demo.work.timeoutMs=890000");
    expect(r.code, r.output).toBe(1);
    expect(r.stdout).toContain("Overrides (this run only): demo.work.timeoutMs=890000");
    expect(r.stderr).toMatch(/T1 violated for demo\.work: timeoutMs \+ safety margin \(920000\) must be ≤ .*\(900000\)/);
  });

  it.for([
    ["demo.work.timeoutMs=abc", 'value "abc" is not a non-negative integer'],
    ["demo.work.colour=5", 'unknown policy field "colour"'],
    ["nope.timeoutMs=5", 'unknown operation type "nope"'],
  ])("rejects --override %s with a clear message and exit 2", async ([override, message], { expect }) => {
    const r = await tsx("check-lifecycle.ts", "--override", override!);
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toContain(`check-lifecycle: --override "${override}": ${message}`);
    expect(r.stdout).toBe("");
  });

  it("rejects a wrangler config that does not exist", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--config", "test/node/fixtures/missing.toml");
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/wrangler config not found: .*missing\.toml/);
  });
});
