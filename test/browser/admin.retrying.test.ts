/**
 * Browser: a real demo.work run whose first two attempts throw a retryable error,
 * created through the API in a workspace of this file's own and executed by
 * the queue consumer inside `wrangler dev`. The operations page shows it
 * Retrying (which attempt failed, when the next is due, the error excerpt for
 * the owner) — never as fresh Queued — then Succeeded, and the polite live
 * region announced each change.
 */
import { describe, expect } from "vitest";
import { z } from "zod";
import { screenshotAt1400, SHOT_VIEWPORT } from "./support/a11y";
import { expectNoProblems, localWorker, seed, SETTLE_MS, signIn, test as it } from "./support/browser";
import { workspaceSql } from "./support/fixtures";

// Attempts 1 and 2 throw at step 1, each followed by the type's 5 s retry delay (two windows in which the
// page, polling every 2 s, can see it Retrying, so a slow poll cannot miss both); attempt 3 runs 4 steps of 250 ms.
const INPUT = { steps: 4, stepMs: 250, throwAtStep: 1, throwTimes: 2 };

describe("a retried run on the operations page (browser)", () => {
  it("reads Retrying with its attempt, error and due time between the attempts, then Succeeded; each change is announced", async ({ admin }) => {
    const { page } = admin;
    const ws = workspaceSql("retrying", { token: true });
    await seed(ws.sql);
    await page.setViewportSize(SHOT_VIEWPORT);
    await signIn(page, ws.workspace.ownerEmail);

    const res = await fetch(`${localWorker().baseUrl}/api/v1/runs`, {
      method: "POST",
      headers: { authorization: `Bearer ${ws.workspace.token}`, "content-type": "application/json" },
      body: JSON.stringify({ type: "demo.work", input: INPUT }),
    });
    expect(res.status, await res.clone().text()).toBe(202);
    const { run } = z.object({ run: z.object({ id: z.string() }) }).parse(await res.json());
    // Loaded with the run on it (so it polls), the live region's every text recorded in order.
    await page.goto("/admin/operations");
    await page.evaluate(() => {
      const region = document.getElementById("announcer")!;
      const said: string[] = [];
      Object.assign(window, { said });
      new MutationObserver(() => {
        const t = region.textContent ?? "";
        if (t) said.push(t);
      }).observe(region, { childList: true, characterData: true, subtree: true });
    });

    const row = page.locator(`tr[data-run-id="${run.id}"]`);
    const seen: string[] = [];
    let retrying: { attempt: string; due: string; error: string } | null = null;
    const until = Date.now() + 60_000;
    for (;;) {
      const display = (await row.getAttribute("data-display")) ?? "";
      if (seen.at(-1) !== display) seen.push(display);
      if (display === "retrying" && !retrying) {
        retrying = {
          attempt: (await row.locator("[data-retry-attempt]").innerText()).trim(),
          due: (await row.locator("[data-retry-due]").innerText()).trim(),
          error: (await row.locator("[data-last-error-excerpt]").innerText()).trim(),
        };
        await screenshotAt1400(page, "operations-retrying-live");
      }
      if (display === "succeeded" || display === "failed" || display === "failed_reconciled") break;
      expect(Date.now(), `the run did not finish in time; seen: ${seen.join(" → ")}`).toBeLessThan(until);
      await page.waitForTimeout(200);
    }

    expect(seen.at(-1), seen.join(" → ")).toBe("succeeded");
    expect(seen, seen.join(" → ")).toContain("retrying");
    // Once an attempt had run, it never went back to fresh Queued.
    expect(seen.slice(seen.indexOf("retrying")), seen.join(" → ")).not.toContain("queued");
    const n = retrying?.attempt.match(/^Attempt ([12]) of 3 failed$/)?.[1];
    expect(n, JSON.stringify(retrying)).toBeDefined();
    expect(retrying).toEqual({
      attempt: `Attempt ${n} of 3 failed`,
      due: expect.stringMatching(/^next attempt due (in [1-5] s|now)$/),
      error: `RetryableError: Simulated transient error at step 1 (attempt ${n}).`,
    });
    // The announcement follows the swap that showed the change (once htmx has settled it).
    const said = () => page.evaluate(() => (window as unknown as { said: string[] }).said);
    const short = `Run …${run.id.slice(-8)}`;
    await expect.poll(async () => (await said()).at(-1), { timeout: SETTLE_MS }).toBe(`${short} is now Succeeded.`);
    expect(await said()).toContain(`${short} is now Retrying.`);
    expectNoProblems(admin);
  });
});
