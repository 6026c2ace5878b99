/**
 * Browser: retry as a new run from the run page (contract section 7). The
 * owner presses "Retry as new run" on a failed run and lands on the new run;
 * it links back to the original, runs on the real queue and shows its output
 * once it succeeds (live, without a reload); the original lists it under
 * "Retried by". Both pages pass axe with the new parts on them.
 */
import { describe, expect } from "vitest";
import { expectAccessible } from "./support/a11y";
import { expectNoProblems, screenshot, seed, signIn, test } from "./support/browser";
import { runsSql, workspaceSql } from "./support/fixtures";

/** How long the retried run (10 steps of 500 ms on the real queue) may take on a loaded machine: a deadline, not a goal. */
const RUN_DEADLINE_MS = 150_000;

const it = test.extend("runs", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("retry");
  const { runs, sql } = runsSql(ws.workspace.id, ["failed"] as const);
  await seed(ws.sql + sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return runs;
});

describe("retry as a new run (browser)", () => {
  it("from the run page: the new run links back, shows its output when it succeeds, and the original lists it", async ({ admin, runs }) => {
    const { page } = admin;
    const original = runs.failed.id;
    await page.goto(`/admin/operations/${original}`);
    await page.getByRole("button", { name: "Retry as new run" }).click();
    await page.waitForURL((url) => /\/admin\/operations\/run_[0-9A-Z]{26}$/.test(url.pathname) && !url.pathname.endsWith(original));
    const newId = new URL(page.url()).pathname.split("/").at(-1)!;

    const back = page.locator("a[data-retry-of]");
    expect(await back.getAttribute("href")).toBe(`/admin/operations/${original}`);
    expect((await back.innerText()).trim()).toBe(original);

    // The new run runs on the real queue; its page updates live until it has ended.
    await page.locator("#run-summary[data-display='succeeded'] pre[data-output]").waitFor({ timeout: RUN_DEADLINE_MS });
    expect(JSON.parse(await page.locator("pre[data-output]").innerText())).toEqual({ items: 10 });
    // A run that ended can itself be retried.
    expect(await page.getByRole("button", { name: "Retry as new run" }).count()).toBe(1);
    await expectAccessible(page, "a retried run's page");
    await screenshot(page, "run-retried-with-output");

    await back.click();
    await page.waitForURL(`**/admin/operations/${original}`);
    const retriedBy = page.locator("[data-retried-by] a");
    expect(await retriedBy.count()).toBe(1);
    expect(await retriedBy.getAttribute("href")).toBe(`/admin/operations/${newId}`);
    expect(await page.locator("a[data-retry-of]").count()).toBe(0);
    await expectAccessible(page, "the original run's page");
    expectNoProblems(admin);
  });
});
