/**
 * Browser: from the operations page, the run's link (named after the run) opens it, and the run
 * page explains its reason code in operator terms: the reason's title, what
 * happened, the side effects, what to do. A reconciliation reads as the
 * lifecycle machinery's decision, naming the detector; an execution failure
 * reads as the run's own, with its message.
 */
import type { Page } from "playwright-core";
import { describe, expect } from "vitest";
import { explainReason, type ReasonCode } from "../../src/lifecycle";
import { expectNoProblems, screenshot, seed, signIn, test } from "./support/browser";
import { runsSql, workspaceSql, type SeededRun } from "./support/fixtures";

/** A failed and a reconciled run in a workspace of this file's own, its owner signed in. */
const it = test.extend("runs", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("explain");
  const { runs, sql } = runsSql(ws.workspace.id, ["failed", "failed_reconciled"] as const);
  await seed(ws.sql + sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return runs;
});

async function openFromOperations(page: Page, run: SeededRun): Promise<void> {
  await page.goto("/admin/operations");
  await page.locator(`tr[data-run-id="${run.id}"]`).getByRole("link", { name: `Run ${run.id}` }).click();
  await page.waitForURL(`**/admin/operations/${run.id}`);
}

async function explanation(page: Page) {
  const callout = page.locator("#run-summary .callout[data-reason-family]");
  return {
    family: await callout.getAttribute("data-reason-family"),
    title: (await callout.locator(".callout__title").innerText()).trim(),
    terms: await callout.locator("dl.explain dt").allInnerTexts(),
    details: await callout.locator("dl.explain dd").allInnerTexts(),
    text: await callout.innerText(),
  };
}

function expectExplains(e: Awaited<ReturnType<typeof explanation>>, code: ReasonCode): void {
  const reason = explainReason(code);
  expect(e.terms).toEqual(["What happened", "Side effects", "What to do"]);
  expect(e.details).toEqual([reason.whatHappened, reason.sideEffects, reason.whatToDo]);
}

describe("run page explanation (browser)", () => {
  it("reads a reconciled failure as the lifecycle machinery's decision, by the sweep", async ({ admin, runs }) => {
    const { page } = admin;
    await openFromOperations(page, runs.failed_reconciled);
    expect(await page.locator("#run-summary .badge").getAttribute("data-display")).toBe("failed_reconciled");
    const e = await explanation(page);
    expect(e.family).toBe("lifecycle");
    expect(e.title).toBe(`Reconciled by the lifecycle machinery: ${explainReason("lifecycle.stale_running").title}`);
    expect(e.text).toContain("The handler never reported an outcome. The outcome was decided by the reconciliation sweep");
    expectExplains(e, "lifecycle.stale_running");
    // The original error stays beside the reconciliation, in diagnostics.
    await page.locator("details.diagnostics summary").click();
    expect(await page.locator("[data-last-error]").innerText()).toBe("connection reset by upstream");
    await screenshot(page, "run-reconciled-explanation");
    expectNoProblems(admin);
  });

  it("reads an execution failure as the run's own, with its message", async ({ admin, runs }) => {
    const { page } = admin;
    await openFromOperations(page, runs.failed);
    expect(await page.locator("#run-summary .badge").getAttribute("data-display")).toBe("failed");
    const e = await explanation(page);
    expect(e.family).toBe("execution");
    expect(e.title).toBe(`Failed: ${explainReason("handler.failed").title}`);
    expect(e.text).not.toContain("lifecycle machinery");
    expectExplains(e, "handler.failed");
    expect(await page.locator("[data-failure-message]").innerText()).toBe("Step 3 of 10 failed (simulated).");
    await screenshot(page, "run-failed-explanation");
    expectNoProblems(admin);
  });
});
