/**
 * Browser: the audit log's slide-over (public/admin.js + htmx). Choosing an
 * event opens it as a dialog, puts `?event=` in the URL and moves focus into
 * it; Close, Esc and the back button close it and return focus to the link
 * that opened it; a deep link renders it open with focus inside.
 */
import type { Page } from "playwright-core";
import { describe, expect } from "vitest";
import { expectNoProblems, screenshot, seed, SETTLE_MS, signIn, test } from "./support/browser";
import { runsSql, workspaceSql, type SeededRun } from "./support/fixtures";

const DIALOG = 'aside[role="dialog"]';

/** One run's events in a workspace of this file's own, its owner signed in; `event` is the middle one. */
const it = test.extend("event", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("audit");
  const { runs, sql } = runsSql(ws.workspace.id, ["failed"] as const);
  await seed(ws.sql + sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return runs.failed.events[1]!;
});

type Event = SeededRun["events"][number];

const link = (page: Page, event: Event) => page.locator(`a.event-link[data-event-id="${event.id}"]`);

const eventParam = (page: Page) => new URL(page.url()).searchParams.get("event");

/** Whether focus is on the dialog or inside it. */
const focusInDialog = (page: Page) => page.evaluate((sel) => Boolean(document.activeElement?.closest(sel)), DIALOG);

/** The event id of the focused event link, if an event link has focus. */
const focusedEventLink = (page: Page) =>
  page.evaluate(() => {
    const el = document.activeElement;
    return el instanceof HTMLAnchorElement && el.classList.contains("event-link") ? el.dataset.eventId ?? null : null;
  });

/** The slide-over shows `event`, the URL names it, focus is inside. */
async function expectOpen(page: Page, { id, action }: Event): Promise<void> {
  await page.locator(DIALOG).waitFor({ state: "visible" });
  expect(await page.locator(DIALOG).getAttribute("data-event-id")).toBe(id);
  expect(await page.locator(`${DIALOG} #slideover-title`).innerText()).toBe(action);
  await expect.poll(() => eventParam(page), { timeout: SETTLE_MS }).toBe(id);
  await expect.poll(() => focusInDialog(page), { timeout: SETTLE_MS, message: "focus is inside the dialog" }).toBe(true);
}

/** The slide-over is gone, so is `?event=`, and focus is back on the event's link. */
async function expectClosedWithFocusBack(page: Page, { id }: Event): Promise<void> {
  await page.locator(DIALOG).waitFor({ state: "detached" });
  await expect.poll(() => eventParam(page), { timeout: SETTLE_MS }).toBeNull();
  expect(new URL(page.url()).pathname).toBe("/admin/audit-log");
  await expect.poll(() => focusedEventLink(page), { timeout: SETTLE_MS, message: "focus is back on the link that opened it" }).toBe(id);
}

describe("audit log slide-over (browser)", () => {
  it.beforeEach(async ({ admin, event }) => {
    await admin.page.goto("/admin/audit-log");
    expect(await link(admin.page, event).count()).toBe(1);
    expect(await admin.page.locator(DIALOG).count()).toBe(0);
  });

  it("opens on a click and closes with the Close button, focus going in and back", async ({ admin, event }) => {
    const { page } = admin;
    await link(page, event).click();
    await expectOpen(page, event);
    await screenshot(page, "audit-slideover-open");
    await page.locator(`${DIALOG} [data-close="button"]`).click();
    await expectClosedWithFocusBack(page, event);
    expectNoProblems(admin);
  });

  it("opens with Enter on the focused link and closes with Esc", async ({ admin, event }) => {
    const { page } = admin;
    await link(page, event).focus();
    await page.keyboard.press("Enter");
    await expectOpen(page, event);
    await page.keyboard.press("Escape");
    await expectClosedWithFocusBack(page, event);
    expectNoProblems(admin);
  });

  it("closes with the browser's back button", async ({ admin, event }) => {
    const { page } = admin;
    await link(page, event).click();
    await expectOpen(page, event);
    await page.goBack();
    await expectClosedWithFocusBack(page, event);
    expectNoProblems(admin);
  });

  it("renders a deep link (?event=) open, with focus inside, and Esc closes it", async ({ admin, event }) => {
    const { page } = admin;
    await page.goto(`/admin/audit-log?event=${event.id}`);
    await expectOpen(page, event);
    await screenshot(page, "audit-slideover-deep-link");
    await page.keyboard.press("Escape");
    await expectClosedWithFocusBack(page, event);
    expectNoProblems(admin);
  });
});
