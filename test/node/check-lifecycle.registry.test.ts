/**
 * `npm run check:lifecycle` reads policies from Worker code: an operation file
 * may import `cloudflare:workers` (read a binding at load time, extend a
 * runtime class) and the check still reads its policy, because the registry
 * is bundled and evaluated with `cloudflare:*` stubbed (scripts/lib/registry.ts),
 * never imported as Node code.
 */
import { describe, it } from "vitest";
import { run, tsx } from "./support/run";

const FIXTURE = "test/node/fixtures/operations/registry.ts";

describe.concurrent("check:lifecycle reads a registry of Worker code", () => {
  it("checks a type whose file imports cloudflare:workers, T1–T9, and exits 0", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--registry", FIXTURE);
    expect(r.code, r.output).toBe(0);
    expect(r.stdout).toContain(`Registry: ${FIXTURE}`);
    for (const rule of ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"]) {
      expect(r.stdout).toMatch(new RegExp(`^${rule}\\s+fixture\\.uses_bindings\\s.*\\sOK$`, "m"));
    }
    // The number is the fixture's own, read from its file: 30 s + the 30 s margin.
    expect(r.stdout).toMatch(/^T1\s+fixture\.uses_bindings\s+timeoutMs \+ safety margin\s+60000\s/m);
    expect(r.stdout).toContain("for 2 operation type(s)");
  });

  it("applies an override to that type, so its numbers are really the ones checked", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--registry", FIXTURE, "--override", "fixture.uses_bindings.heartbeatTimeoutMs=2000");
    expect(r.code, r.output).toBe(1);
    expect(r.stderr).toMatch(/T2 violated for fixture\.uses_bindings: heartbeatTimeoutMs \(2000\) must be ≥ 3 × heartbeatIntervalMs \(3000\)/);
  });

  it("fails with exit 2 and the bundler's words when the registry module cannot be built", async ({ expect }) => {
    const r = await tsx("check-lifecycle.ts", "--registry", "test/node/fixtures/operations/missing.ts");
    expect(r.code, r.output).toBe(2);
    expect(r.stderr).toMatch(/check-lifecycle: cannot bundle test\/node\/fixtures\/operations\/missing\.ts: [\s\S]*Could not resolve/);
  });

  it("the fixture is Worker-only code: Node itself cannot import it", async ({ expect }) => {
    const r = await run("npx", ["tsx", "--eval", `import(${JSON.stringify(`./${FIXTURE}`)}).then(() => console.log("loaded"))`]);
    expect(r.stdout).not.toContain("loaded");
    expect(r.stderr).toMatch(/cloudflare:/);
  });
});
