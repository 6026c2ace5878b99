/**
 * Browser: the live list leaves the operator's place alone and can be used
 * with a keyboard. Focus on a run's link and the scroll position survive
 * several polls (rows are morphed in place, not replaced); a state change is
 * announced through the polite live region; the skip link, the search box,
 * the tiles and the copy button work from the keyboard; the audit
 * slide-over keeps Tab inside itself.
 */
import type { Page } from "playwright-core";
import { describe, expect } from "vitest";
import { sqlString } from "../../scripts/lib/seed";
import { expectAccessible, screenshotAt1400, SHOT_VIEWPORT } from "./support/a11y";
import { expectNoProblems, seed, SETTLE_MS, signIn, test } from "./support/browser";
import { runsSql, workspaceSql } from "./support/fixtures";

const POLL_DEADLINE_MS = 30_000;

const it = test.extend("seeded", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("keyboard");
  // Fresh queued runs keep the list live (polling) for two minutes; a retrying and a failed one beside them.
  const a = runsSql(ws.workspace.id, ["queued", "retrying", "failed"] as const);
  const b = runsSql(ws.workspace.id, ["queued"] as const);
  const c = runsSql(ws.workspace.id, ["queued"] as const);
  await seed(ws.sql + a.sql + b.sql + c.sql);
  await admin.page.setViewportSize(SHOT_VIEWPORT);
  await admin.context.grantPermissions(["clipboard-read", "clipboard-write"]);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return { ws: ws.workspace, runs: { ...a.runs, queued2: b.runs.queued, queued3: c.runs.queued } };
});

/** Resolve after `n` more answers to the list's poll. */
async function polls(page: Page, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await page.waitForResponse((r) => new URL(r.url()).pathname === "/admin/operations/live" && r.status() === 200, { timeout: POLL_DEADLINE_MS });
  }
  // Let htmx settle the swap it just received.
  await page.waitForTimeout(300);
}

describe("live list and keyboard (browser)", () => {
  it("focus on a run's link stays on that very element across several polls", async ({ admin, seeded }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    expect(await page.locator("#poller").getAttribute("data-polling")).toBe("on");
    const link = page.locator(`tr[data-run-id="${seeded.runs.queued.id}"] a.run-link`);
    await link.focus();
    // Mark the node with a property (a morph syncs attributes, not properties): a replaced row brings a new element without it.
    await link.evaluate((el) => Object.assign(el, { marked: "yes" }));
    await polls(page, 3);
    const focused = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return { tag: el?.tagName ?? null, marked: (el as { marked?: string } | null)?.marked ?? null, label: el?.getAttribute("aria-label") ?? null, connected: el?.isConnected ?? false };
    });
    expect(focused).toEqual({ tag: "A", marked: "yes", label: `Run ${seeded.runs.queued.id}`, connected: true });
    // Enter opens the focused run.
    await page.keyboard.press("Enter");
    await page.waitForURL(`**/admin/operations/${seeded.runs.queued.id}`);
    expectNoProblems(admin);
  });

  it("the scroll position survives polls", async ({ admin }) => {
    const { page } = admin;
    await page.setViewportSize({ width: 1400, height: 400 });
    await page.goto("/admin/operations");
    await page.evaluate(() => window.scrollTo(0, 250));
    const before = await page.evaluate(() => window.scrollY);
    expect(before).toBeGreaterThan(100);
    await polls(page, 2);
    expect(await page.evaluate(() => window.scrollY)).toBe(before);
    await page.setViewportSize(SHOT_VIEWPORT);
    expectNoProblems(admin);
  });

  it("a run that changes state is announced politely, its row updated in place", async ({ admin, seeded }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    const id = seeded.runs.queued3.id;
    const row = page.locator(`tr[data-run-id="${id}"]`);
    expect(await row.getAttribute("data-display")).toBe("queued");
    await row.evaluate((el) => Object.assign(el, { marked: "yes" }));
    const now = Date.now();
    await seed(
      `UPDATE operation_runs SET status = 'completed', outcome = 'succeeded', attempt = 1, started_at = ${now - 3_000}, completed_at = ${now}, ` +
        `deadline_at = NULL, updated_at = ${now} WHERE id = ${sqlString(id)};\n`,
    );
    await expect.poll(() => row.getAttribute("data-display"), { timeout: POLL_DEADLINE_MS }).toBe("succeeded");
    expect(await row.evaluate((el) => (el as { marked?: string }).marked)).toBe("yes");
    const announcer = page.locator("#announcer");
    expect(await announcer.getAttribute("aria-live")).toBe("polite");
    await expect.poll(() => announcer.textContent(), { timeout: SETTLE_MS }).toBe(`Run …${id.slice(-8)} is now Succeeded.`);
    expectNoProblems(admin);
  });

  it("keyboard: the skip link comes first and lands on the content; the search box finds a run by id; a tile opens its filter", async ({ admin, seeded }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    await page.keyboard.press("Tab");
    const skip = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const r = el.getBoundingClientRect();
      return { cls: el.className, text: el.textContent?.trim(), visible: r.top >= 0 && r.height > 0 };
    });
    expect(skip).toEqual({ cls: "skip-link", text: "Skip to content", visible: true });
    await page.keyboard.press("Enter");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("main");

    // Search: type the id, press Enter.
    await page.locator('input[name="run"]').fill(seeded.runs.retrying.id.toLowerCase());
    await page.locator('input[name="run"]').press("Enter");
    await page.waitForURL(/run=/);
    expect(await page.locator("tr[data-run-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-run-id")))).toEqual([seeded.runs.retrying.id]);
    await screenshotAt1400(page, "operations-search-by-id");

    // The Retrying tile opens the filter that lists what it counts.
    await page.goto("/admin/operations");
    const tile = page.locator("#tile-retrying");
    expect(await tile.locator("[data-tile]").innerText()).toBe("1");
    await tile.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/display=retrying/);
    expect(await page.locator("tr[data-run-id]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-display")))).toEqual(["retrying"]);
    expect(await page.locator('select[name="display"]').inputValue()).toBe("retrying");
    await expectAccessible(page, "operations filtered by a tile");
    expectNoProblems(admin);
  });

  it("the copy button puts the full run id on the clipboard and says so", async ({ admin, seeded }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    const id = seeded.runs.failed.id;
    const button = page.locator(`tr[data-run-id="${id}"] button.copy`);
    expect(await button.getAttribute("aria-label")).toBe(`Copy run id ${id}`);
    await button.focus();
    await page.keyboard.press("Enter");
    await expect.poll(() => page.evaluate(() => navigator.clipboard.readText()), { timeout: SETTLE_MS }).toBe(id);
    await expect.poll(() => page.locator("#announcer").textContent(), { timeout: SETTLE_MS }).toBe(`Copied ${id}.`);
    expectNoProblems(admin);
  });

  it("the audit slide-over traps Tab and Shift+Tab inside itself, and Esc returns focus to its link", async ({ admin, seeded }) => {
    const { page } = admin;
    await page.goto("/admin/audit-log");
    const event = seeded.runs.failed.events[1]!;
    const link = page.locator(`a.event-link[data-event-id="${event.id}"]`);
    await link.focus();
    await page.keyboard.press("Enter");
    const dialog = page.locator('aside[role="dialog"]');
    await dialog.waitFor({ state: "visible" });
    await expect.poll(() => page.evaluate(() => Boolean(document.activeElement?.closest('aside[role="dialog"]'))), { timeout: SETTLE_MS }).toBe(true);
    const focusables = await dialog.locator("a[href], button").count();
    expect(focusables).toBeGreaterThanOrEqual(2);
    const seen = new Set<string>();
    for (const key of [...Array(focusables * 2 + 2).fill("Tab"), ...Array(focusables * 2 + 2).fill("Shift+Tab")]) {
      await page.keyboard.press(key);
      const where = await page.evaluate(() => {
        const el = document.activeElement as HTMLElement | null;
        return { inside: Boolean(el?.closest('aside[role="dialog"]')), name: `${el?.tagName} ${el?.textContent?.trim().slice(0, 40)}` };
      });
      expect(where.inside, `${key} moved focus to ${where.name}`).toBe(true);
      seen.add(where.name);
    }
    // It cycled through more than one element: a real cycle, not focus stuck on the panel.
    expect(seen.size).toBeGreaterThanOrEqual(2);
    await expectAccessible(page, "audit slide-over");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "detached" });
    await expect.poll(() => page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.eventId ?? null), { timeout: SETTLE_MS }).toBe(event.id);
    expectNoProblems(admin);
  });
});
