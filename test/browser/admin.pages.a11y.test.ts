/**
 * Browser: every admin page, as an owner and as a viewer, scanned by axe-core
 * with no serious or critical violation, no Content Security Policy violation
 * (htmx's indicator styles come from the stylesheet, never an injected
 * <style>), and a screenshot of each at 1400×1000 in artifacts/screenshots/.
 */
import { describe, expect } from "vitest";
import { DISPLAY_STATES } from "../../src/lifecycle";
import { sqlString } from "../../scripts/lib/seed";
import { expectAccessible, screenshotAt1400, SHOT_VIEWPORT } from "./support/a11y";
import { seed, signIn, test } from "./support/browser";
import { runsSql, webhooksSql, workspaceSql } from "./support/fixtures";

const it = test.extend("seeded", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("pages");
  const { runs, sql } = runsSql(ws.workspace.id, DISPLAY_STATES);
  const viewerEmail = "viewer@pages.browser.test";
  const now = Date.now();
  const viewerSql =
    `INSERT INTO users (id, email, name, created_at) VALUES ('usr_browser_pages_viewer', ${sqlString(viewerEmail)}, 'Viewer (pages)', ${now});\n` +
    `INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (${sqlString(ws.workspace.id)}, 'usr_browser_pages_viewer', 'viewer', ${now});\n`;
  const webhooks = webhooksSql(ws.workspace.id, [runs.succeeded.id, runs.failed.id, runs.failed_reconciled.id]);
  await seed(ws.sql + sql + viewerSql + webhooks.sql);
  await admin.page.setViewportSize(SHOT_VIEWPORT);
  return { ws: ws.workspace, runs, viewerEmail, webhookEndpointId: webhooks.endpointId };
});

/** Problems the pages reported, less the browser's own line for a page answered with an expected error status. */
function unexpected(problems: string[], expectedStatus: number[]): string[] {
  return problems.filter((p) => !expectedStatus.some((s) => p.includes(`the server responded with a status of ${s}`)));
}

describe("every admin page (browser): axe-core, CSP, screenshots", () => {
  it("as an owner: operations, filters, each kind of run page, audit log with the slide-over open, lifecycle, webhooks and a delivery log, a 404", async ({ admin, seeded }) => {
    const { page } = admin;
    await signIn(page, seeded.ws.ownerEmail);
    const pages: Array<[string, string]> = [
      ["/admin/operations", "operations"],
      ["/admin/operations?display=active", "operations-filter-active"],
      [`/admin/operations?run=${seeded.runs.retrying.id}`, "operations-search"],
      [`/admin/operations/${seeded.runs.retrying.id}`, "run-retrying"],
      [`/admin/operations/${seeded.runs.running.id}`, "run-running"],
      [`/admin/operations/${seeded.runs.running_stale.id}`, "run-running-stale"],
      [`/admin/operations/${seeded.runs.failed.id}`, "run-failed"],
      [`/admin/operations/${seeded.runs.failed_reconciled.id}`, "run-failed-reconciled"],
      [`/admin/operations/${seeded.runs.succeeded.id}`, "run-succeeded"],
      ["/admin/audit-log", "audit-log"],
      [`/admin/audit-log?event=${seeded.runs.failed.events[1]!.id}`, "audit-log-slideover"],
      ["/admin/lifecycle", "lifecycle"],
      ["/admin/settings/webhooks", "settings-webhooks"],
      [`/admin/settings/webhooks/${seeded.webhookEndpointId}`, "settings-webhook-deliveries"],
      ["/admin/operations/run_00000000000000000000000000", "not-found"],
    ];
    for (const [path, name] of pages) {
      await page.goto(path);
      await page.locator("main#main").waitFor();
      if (name.startsWith("run-")) await page.locator("details.diagnostics").evaluate((d) => ((d as HTMLDetailsElement).open = true));
      if (name === "settings-webhooks") expect(await page.locator("tr[data-endpoint-id]").count(), name).toBe(1);
      if (name === "settings-webhook-deliveries") {
        expect(await page.locator("tr[data-webhook-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-status"))), name).toEqual([
          "failed",
          "pending",
          "delivered",
        ]);
        // Each delivery's tries, opened: their content is scanned and in the screenshot too.
        await page.locator("tr[data-webhook-id] details").evaluateAll((all) => all.forEach((d) => ((d as HTMLDetailsElement).open = true)));
      }
      await expectAccessible(page, name);
      // htmx injected no <style> (the CSP would block it); its indicator rule is the stylesheet's.
      const styles = await page.evaluate(() => ({
        injected: document.querySelectorAll("style").length,
        indicator: [...document.styleSheets].some((s) => [...s.cssRules].some((r) => r instanceof CSSStyleRule && r.selectorText === ".htmx-indicator")),
      }));
      expect(styles, name).toEqual({ injected: 0, indicator: true });
      await screenshotAt1400(page, `page-${name}`);
    }
    expect(unexpected(admin.problems, [404]), "console errors, page errors or CSP violations").toEqual([]);
  });

  it("as a viewer: the operations and run pages without diagnostics, and the 403 page with its navigation", async ({ admin, seeded }) => {
    const { page } = admin;
    admin.problems.length = 0;
    await signIn(page, seeded.viewerEmail);
    await page.goto(`/admin/operations/${seeded.runs.retrying.id}`);
    expect(await page.locator("details.diagnostics").count()).toBe(0);
    expect(await page.locator("[data-last-error-hidden]").innerText()).toContain("owners and operators");
    await expectAccessible(page, "viewer run page");
    await screenshotAt1400(page, "page-run-retrying-viewer");

    const res = await page.goto("/admin/audit-log");
    expect(res?.status()).toBe(403);
    expect(await page.locator('nav[aria-label="Main"] a').allInnerTexts()).toEqual(["Operations", "Lifecycle"]);
    await expectAccessible(page, "403 page");
    await screenshotAt1400(page, "page-forbidden");
    // The way back is a link, reachable by keyboard.
    await page.locator(".error-page a.button").click();
    await page.waitForURL("**/admin/operations");
    expect(unexpected(admin.problems, [403]), "console errors, page errors or CSP violations").toEqual([]);
  });

  it("the sign-in page", async ({ admin }) => {
    admin.problems.length = 0;
    await admin.page.context().clearCookies();
    await admin.page.goto("/admin/sign-in");
    await expectAccessible(admin.page, "sign-in");
    await screenshotAt1400(admin.page, "page-sign-in");
    expect(admin.problems).toEqual([]);
  });
});
