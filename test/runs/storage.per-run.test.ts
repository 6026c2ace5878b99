/**
 * What a run costs in D1 storage, as D1 reports it (`meta.size_after`): runs
 * accepted, claimed and completed through RunService, with their audit
 * events and every index entry. SCALING.md computes the days of history a
 * 10 GB database holds from this figure; the bound below catches a change
 * that makes a run much larger (a new index, a fatter event) before that
 * arithmetic silently goes wrong.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { makeWorkspace, runService } from "../support/fixtures";

const RUNS = 200;
/** Measured at 2,275 bytes (2,000 runs) and 2,318 (500 runs); this bound leaves room for page rounding, not for a new index. */
const BOUND_BYTES = 3_000;

it(`a successful short run, its events and their index entries take under ${BOUND_BYTES} bytes of D1 storage`, async () => {
  const svc = runService();
  const ws = await makeWorkspace("storage");
  const size = async () => (await env.DB.prepare("SELECT 1").run()).meta.size_after;
  const oneRun = async () => {
    const c = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 5, stepMs: 100 }, initiator: "api-token:ci" });
    if (!c.ok) throw new Error("create refused");
    expect((await svc.claim(c.run.id, 1)).ok).toBe(true);
    expect((await svc.complete(c.run.id, 1, { outcome: "succeeded", progress: { total: 5, processed: 5, succeeded: 5, failed: 0 } })).ok).toBe(true);
  };
  for (let i = 0; i < 20; i++) await oneRun();
  const before = await size();
  for (let i = 0; i < RUNS; i++) await oneRun();
  const perRun = ((await size()) - before) / RUNS;
  console.log(`D1 storage per successful short run: ${Math.round(perRun)} bytes (${RUNS} runs, size_after delta)`);
  expect(perRun).toBeGreaterThan(0);
  expect(perRun).toBeLessThan(BOUND_BYTES);
}, 300_000);
