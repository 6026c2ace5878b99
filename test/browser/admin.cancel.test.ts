/**
 * Browser: cancel a running run from its page (contract section 7). A real
 * demo.work run, in a workspace of this file's own, hangs at step 2 ignoring
 * its AbortSignal (`hangAtStep`), so once cancelled it stays Cancelling until
 * the run's tracker ends it at the cancel grace (30 s): the page shows
 * Cancelling (who asked, the reason), then, through its own live refresh,
 * Cancelled by the owner, and the change is announced. The Cancel form is a
 * disclosure: nothing is posted until "Cancel this run" is pressed.
 */
import { describe, expect } from "vitest";
import { z } from "zod";
import { cancelGraceFor, DEFAULT_SETTINGS } from "../../src/lifecycle";
import { expectAccessible, screenshotAt1400, SHOT_VIEWPORT } from "./support/a11y";
import { expectNoProblems, localWorker, seed, SETTLE_MS, signIn, test as it } from "./support/browser";
import { POLICY, workspaceSql } from "./support/fixtures";

const INPUT = { steps: 3, stepMs: 100, hangAtStep: 2 };
const GRACE_MS = cancelGraceFor(POLICY, DEFAULT_SETTINGS);
/** Failure deadlines only: a busy machine is slow, not wrong. */
const START_DEADLINE_MS = 60_000;
const END_DEADLINE_MS = GRACE_MS + 90_000;

describe("cancel from the run page (browser)", () => {
  it("an owner cancels a running run: Cancelling, then Cancelled by them, announced", async ({ admin }) => {
    const { page } = admin;
    const ws = workspaceSql("cancel", { token: true });
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

    await page.goto(`/admin/operations/${run.id}`);
    const summary = page.locator("#run-summary");
    await expect.poll(() => summary.getAttribute("data-display"), { timeout: START_DEADLINE_MS }).toBe("running");

    // The form is closed until asked for; opening it posts nothing.
    const confirm = page.getByRole("button", { name: "Cancel this run" });
    expect(await confirm.isVisible()).toBe(false);
    await page.locator(".cancel-run summary").click();
    await page.getByLabel(/Reason/).fill("started by mistake");
    await screenshotAt1400(page, "run-cancel-confirm");
    expect(await summary.getAttribute("data-display")).toBe("running");
    // The form posts, and the answer redirects back to this page (a new document: wait for its load).
    await Promise.all([page.waitForEvent("load"), confirm.click()]);
    expect(new URL(page.url()).pathname).toBe(`/admin/operations/${run.id}`);

    // Cancelling: its attempt ignores the signal, so it stays so until the grace.
    await expect.poll(() => summary.getAttribute("data-display"), { timeout: SETTLE_MS }).toBe("cancelling");
    expect((await summary.locator(".badge").innerText()).trim()).toMatch(/Cancelling$/);
    expect((await page.locator("[data-cancelled-by]").innerText()).trim()).toBe(ws.workspace.ownerEmail);
    expect((await page.locator("[data-cancel-reason]").innerText()).trim()).toBe("started by mistake");
    expect(await page.locator(".cancel-run").count(), "no second cancel offered").toBe(0);
    await screenshotAt1400(page, "run-cancelling");
    await expectAccessible(page, "a Cancelling run");
    await page.evaluate(() => {
      const region = document.getElementById("announcer")!;
      const said: string[] = [];
      Object.assign(window, { said });
      new MutationObserver(() => {
        const t = region.textContent ?? "";
        if (t) said.push(t);
      }).observe(region, { childList: true, characterData: true, subtree: true });
    });

    // The page's own refresh shows the end: the tracker ended it at the grace.
    await expect.poll(() => summary.getAttribute("data-display"), { timeout: END_DEADLINE_MS, interval: 500 }).toBe("cancelled");
    expect(await summary.getAttribute("data-label")).toBe(`Cancelled by ${ws.workspace.ownerEmail}`);
    // A re-dispatch before the claim ("Dispatched again") happens only on a slow machine: not part of what is asserted.
    const timeline = (await page.locator("#timeline .timeline__what").allInnerTexts()).map((t) => t.trim());
    expect(timeline.filter((t) => !t.startsWith("Dispatched again"))).toEqual([
      "Queued",
      "Attempt started",
      "Cancel requested",
      "Cancelled",
    ]);
    const said = () => page.evaluate(() => (window as unknown as { said: string[] }).said);
    await expect.poll(async () => (await said()).at(-1), { timeout: SETTLE_MS }).toBe(`This run is now Cancelled by ${ws.workspace.ownerEmail}.`);
    await screenshotAt1400(page, "run-cancelled");
    await expectAccessible(page, "a Cancelled run");
    expectNoProblems(admin);
  });
});
