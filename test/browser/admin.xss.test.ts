/**
 * Browser: a run whose failure message and original error are markup — an
 * inline script and an <img onerror> — shows them as text wherever the admin
 * shows them, and nothing in them runs: window.__xss stays undefined, no
 * element is made from them, and the CSP reports no violation (a violation
 * would mean markup reached the DOM and only the CSP stopped it).
 *
 * The operations page does not show failure messages at all (only the
 * badge); there the check is that the run's row renders and nothing runs.
 */
import type { Page } from "playwright-core";
import { describe, expect } from "vitest";
import { expectNoProblems, screenshot, seed, signIn, test } from "./support/browser";
import { POLICY, runsSql, workspaceSql, XSS_IMG, XSS_MESSAGE, XSS_SCRIPT } from "./support/fixtures";

/** The run with the payloads, in a workspace of this file's own, its owner signed in. */
const it = test.extend("run", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("xss");
  const { runs, sql } = runsSql(ws.workspace.id, ["failed_xss"] as const);
  await seed(ws.sql + sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return runs.failed_xss;
});

/** Nothing from the payload ran or became an element. */
async function expectInert(page: Page): Promise<void> {
  const state = await page.evaluate(() => ({
    xss: (window as { __xss?: unknown }).__xss,
    payloadScripts: [...document.scripts].filter((s) => s.textContent?.includes("__xss")).length,
    payloadImages: document.querySelectorAll('img[src="x"], [onerror]').length,
  }));
  expect(state).toEqual({ xss: undefined, payloadScripts: 0, payloadImages: 0 });
}

describe("markup in a failure message (browser)", () => {
  it("shows the failure message and the original error as text on the run page", async ({ admin, run }) => {
    const { page } = admin;
    await page.goto(`/admin/operations/${run.id}`);
    const message = page.locator("#run-summary [data-failure-message]");
    expect(await message.innerText()).toBe(`Attempt 1 of ${POLICY.maxAttempts} failed: ${XSS_MESSAGE}`);
    expect(await message.isVisible()).toBe(true);
    await page.locator("details.diagnostics summary").click();
    const lastError = page.locator("[data-last-error]");
    expect(await lastError.innerText()).toBe(XSS_MESSAGE);
    expect(await lastError.isVisible()).toBe(true);
    // Visible on screen as the literal characters, not interpreted.
    expect(await page.locator("main").innerText()).toContain(XSS_SCRIPT);
    await screenshot(page, "xss-run-page");
    await expectInert(page);
    expectNoProblems(admin);
  });

  it("renders the run's row on the operations page without running anything", async ({ admin, run }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    expect(await page.locator(`tr[data-run-id="${run.id}"]`).getAttribute("data-display")).toBe("failed");
    await screenshot(page, "xss-operations-page");
    await expectInert(page);
    expectNoProblems(admin);
  });

  it("shows the message as text in the audit slide-over's metadata", async ({ admin, run }) => {
    const { page } = admin;
    const failed = run.events.find((e) => e.action === "run.failed")!;
    await page.goto("/admin/audit-log");
    await page.locator(`a.event-link[data-event-id="${failed.id}"]`).click();
    const metadata = page.locator('aside[role="dialog"] [data-metadata]');
    await metadata.waitFor({ state: "visible" });
    const shown = await metadata.innerText();
    // The metadata is JSON: the payload appears JSON-quoted (its " escaped), as text.
    expect(shown).toContain(XSS_SCRIPT);
    expect(shown).toContain(JSON.stringify(XSS_IMG).slice(1, -1));
    expect(JSON.parse(shown)).toMatchObject({ error: XSS_MESSAGE });
    await screenshot(page, "xss-audit-slideover");
    await expectInert(page);
    expectNoProblems(admin);
  });
});
