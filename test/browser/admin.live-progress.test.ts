/**
 * Browser: a real demo.work run, created through the API with the demo
 * workspace's seeded token and executed by the queue consumer inside
 * `wrangler dev`, is watched on the operations page: its progress advances
 * while it runs, it reaches Succeeded, and then the page stops polling.
 *
 * This file owns the demo workspace's runs: no other browser test creates
 * any there, so once this run is done nothing live is on the page.
 */
import { describe, expect } from "vitest";
import { z } from "zod";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { POLICY as DEMO_POLICY } from "./support/fixtures";
import { expectNoProblems, localWorker, screenshot, SETTLE_MS, signIn, test as it } from "./support/browser";

// 70 steps of 750 ms: ~52 s of work, inside demo.work's 60 s attempt timeout, so
// the tracker's D1 flush 30 s in lands mid-run and the page, polling every 2 s,
// sees progress go from 0 to a value in between to done.
const INPUT = { steps: 70, stepMs: 750 };
const POLL_INTERVAL_MS = 2_000;
/**
 * How long the ~52 s run may take to finish on a busy machine before the test
 * gives up on it: on an overloaded machine an attempt can miss its 5 s
 * heartbeat timeout, and the run then finishes on its next attempt.
 */
const FINISH_DEADLINE_MS = 400_000;

interface Seen {
  display: string | null;
  processed: number;
  total: number;
}

describe("operations page live progress (browser)", () => {
  it("shows a running run's progress advancing, then Succeeded, then stops polling", { timeout: FINISH_DEADLINE_MS + 120_000 }, async ({ admin }) => {
    expect(DEFAULT_SETTINGS.heartbeatFlushIntervalMs).toBeLessThan(INPUT.steps * INPUT.stepMs);
    expect(INPUT.steps * INPUT.stepMs).toBeLessThan(DEMO_POLICY.timeoutMs);
    const { page } = admin;
    await signIn(page, "owner@demo.test");
    const worker = localWorker();
    const res = await fetch(`${worker.baseUrl}/api/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${worker.demoToken}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "demo.work", input: INPUT }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { run } = z.object({ run: z.object({ id: z.string() }) }).parse(await res.json());

    const polls: string[] = [];
    page.on("request", (req) => {
      if (new URL(req.url()).pathname === "/admin/operations/live") polls.push(req.url());
    });
    await page.goto("/admin/operations");
    expect(await page.locator("#poller").getAttribute("data-polling")).toBe("on");

    // Read the row as the poller refreshes it, until it is terminal.
    const row = page.locator(`tr[data-run-id="${run.id}"]`);
    const seen: Seen[] = [];
    let shotMidRun = false;
    const until = Date.now() + FINISH_DEADLINE_MS;
    for (;;) {
      const now = await row.evaluate((tr) => {
        const p = tr.querySelector(".progress");
        return {
          display: tr.getAttribute("data-display"),
          processed: Number(p?.getAttribute("data-processed")),
          total: Number(p?.getAttribute("data-total")),
        };
      });
      const last = seen.at(-1);
      if (!last || last.display !== now.display || last.processed !== now.processed) seen.push(now);
      if (!shotMidRun && now.display === "running" && now.processed > 0) {
        shotMidRun = true;
        await screenshot(page, "operations-live-progress-running");
      }
      // Retrying is still live: a lost attempt on a loaded machine is retried, not the end.
      if (now.display !== "queued" && now.display !== "running" && now.display !== "retrying") break;
      expect(Date.now(), `the run did not finish in time; seen: ${JSON.stringify(seen)}`).toBeLessThan(until);
      await page.waitForTimeout(200);
    }

    // The attempt that succeeded: what was seen after the last retry, if one happened.
    const lastAttempt = seen.slice(seen.findLastIndex((s) => s.display === "retrying") + 1);
    const running = lastAttempt.filter((s) => s.display === "running").map((s) => s.processed);
    const midRun = running.filter((p) => p > 0 && p < INPUT.steps);
    expect(seen.at(-1), JSON.stringify(seen)).toEqual({ display: "succeeded", processed: INPUT.steps, total: INPUT.steps });
    // One flush every 30 s: at least one value strictly between 0 and done while running.
    expect(midRun.length, `mid-run progress seen: ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(1);
    // Progress only ever moves forward within an attempt.
    const processed = lastAttempt.map((s) => s.processed);
    expect(processed, JSON.stringify(seen)).toEqual([...processed].sort((a, b) => a - b));
    expect((await row.locator(".badge").innerText()).trim()).toMatch(/Succeeded$/);

    // The refresh that showed it terminal also took the poller's trigger away...
    await expect.poll(() => page.locator("#poller").getAttribute("data-polling"), { timeout: SETTLE_MS }).toBe("off");
    await screenshot(page, "operations-live-progress-done");
    // ...so no request follows: watch for more than two polling intervals.
    const before = polls.length;
    await page.waitForTimeout(POLL_INTERVAL_MS * 2 + 1_000);
    expect(polls.slice(before), "requests to /admin/operations/live after polling stopped").toEqual([]);
    expect(before, "the page polled while the run was live").toBeGreaterThan(0);
    expectNoProblems(admin);
  });
});
