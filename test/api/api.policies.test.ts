/**
 * GET /api/v1/policies: each registered type's lifecycle policy and the
 * timing contract (rules T1–T9, contract section 5) as the running Worker
 * checks it, every check with the rule, the type and both numbers.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { apiClient, bodyOf, call, expectProblem } from "../support/api";

const RULE_IDS = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"] as const;

const side = z.object({ label: z.string().min(1), value: z.number() }).strict();
const checkSchema = z
  .object({
    rule: z.enum(RULE_IDS),
    type: z.string(),
    ok: z.boolean(),
    left: side,
    op: z.enum(["≤", "≥", "=", "<", ">"]),
    right: side,
    note: z.string().optional(),
  })
  .strict();

const policiesBody = z
  .object({
    types: z.array(
      z
        .object({
          type: z.string(),
          description: z.string().min(1),
          policy: z
            .object({
              timeoutMs: z.number(),
              expectedRuntimeMs: z.number(),
              heartbeatIntervalMs: z.number(),
              heartbeatTimeoutMs: z.number(),
              staleQueuedAfterMs: z.number(),
              staleRunningAfterMs: z.number(),
              maxAttempts: z.number(),
              retryDelaySeconds: z.number(),
              queue: z.string(),
            })
            .strict(),
        })
        .strict(),
    ),
    settings: z.record(z.string(), z.number()),
    contract: z.object({ ok: z.boolean(), rules: z.record(z.string(), z.string()), checks: z.array(checkSchema) }).strict(),
  })
  .strict();

/** The comparison each check claims, recomputed here from the numbers it reports. */
function holds(c: z.infer<typeof checkSchema>): boolean {
  const [a, b] = [c.left.value, c.right.value];
  switch (c.op) {
    case "≤":
      return a <= b;
    case "≥":
      return a >= b;
    case "=":
      return a === b;
    case "<":
      return a < b;
    case ">":
      return a > b;
  }
}

describe("GET /api/v1/policies", () => {
  it("lists demo.work with the policy it runs under", async () => {
    const { token } = await apiClient("policies");
    const res = await call("/api/v1/policies", { token });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    const body = await bodyOf(res, policiesBody);
    expect(body.types.map((t) => t.type)).toContain("demo.work");
    const demo = body.types.find((t) => t.type === "demo.work");
    // The numbers of src/operations/demo-work.ts, written out: a change to them must be deliberate.
    expect(demo?.policy).toEqual({
      timeoutMs: 60_000,
      expectedRuntimeMs: 20_000,
      heartbeatIntervalMs: 1_000,
      heartbeatTimeoutMs: 5_000,
      staleQueuedAfterMs: 120_000,
      staleRunningAfterMs: 90_000,
      maxAttempts: 3,
      retryDelaySeconds: 5,
      queue: "operations",
    });
    expect(body.settings).toMatchObject({ heartbeatFlushIntervalMs: expect.any(Number), sweepGraceMs: expect.any(Number) });
  });

  it("reports the timing contract as holding, with a check for every rule T1..T9 and every type", async () => {
    const { token } = await apiClient("contract");
    const body = await bodyOf(await call("/api/v1/policies", { token }), policiesBody);
    const { contract } = body;
    expect(contract.ok).toBe(true);
    expect(Object.keys(contract.rules).sort()).toEqual([...RULE_IDS]);
    for (const rule of RULE_IDS) expect(contract.rules[rule]?.length ?? 0, rule).toBeGreaterThan(0);

    for (const { type } of body.types) {
      const rules = new Set(contract.checks.filter((c) => c.type === type).map((c) => c.rule));
      expect([...rules].sort(), type).toEqual([...RULE_IDS]);
    }
    for (const c of contract.checks) {
      const where = `${c.rule} ${c.type}: ${c.left.label} (${c.left.value}) ${c.op} ${c.right.label} (${c.right.value})`;
      expect(c.ok, where).toBe(true);
      // `ok` is what the two reported numbers say, not a bare claim.
      expect(holds(c), where).toBe(c.ok);
      expect(Number.isFinite(c.left.value) && Number.isFinite(c.right.value), where).toBe(true);
    }
  });

  it("checks demo.work against wrangler.toml's queue settings (T3, T4, T5)", async () => {
    const { token } = await apiClient("contract-queue");
    const { contract } = await bodyOf(await call("/api/v1/policies", { token }), policiesBody);
    const demo = contract.checks.filter((c) => c.type === "demo.work");
    // max_retries = 3, retry_delay = 5, batches of 10 with a 2 s timeout for the "operations" queue.
    expect(demo.find((c) => c.rule === "T3")).toMatchObject({ left: { value: 3 }, op: "≥", right: { value: 1 } });
    // 2 s + 5 s + 10 s margin + http.export's 90 s timeout, the longest on the queue: a dispatch may wait behind a batch's slowest attempt.
    expect(demo.find((c) => c.rule === "T5")).toMatchObject({ left: { value: 120_000 }, op: ">", right: { value: 107_000 } });
    expect(demo.find((c) => c.rule === "T4" && c.op === "=")).toMatchObject({ left: { value: 5 }, right: { value: 5 } });
  });

  it.each([
    ["no token", {}],
    ["a wrong token", { authorization: `Bearer opl_${"f".repeat(48)}` }],
  ])("401 problem with %s", async (_what, headers) => {
    const problem = await expectProblem(await call("/api/v1/policies", { headers }), 401);
    expect(problem.type).toBe("https://oplife.dev/problems/unauthorized");
  });
});
