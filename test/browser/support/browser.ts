/**
 * Chromium for the browser tests (found by ./chromium.ts, driven by
 * playwright-core), one per test file, with a watch on every page for what
 * must never happen: console errors, uncaught page errors and Content
 * Security Policy violations.
 */
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { test as base, expect, inject } from "vitest";
import { ARTIFACTS } from "./local-worker";
import { executeSql, type LocalWorker } from "./wrangler";

/** How long a page may take to settle after an action (an htmx swap, a history restore) on a busy machine. */
export const SETTLE_MS = 5_000;
export const SCREENSHOTS = resolve(ARTIFACTS, "screenshots");

// Offline and quiet: no first-run UI, no background fetches, no component updates, no QUIC probes.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--disable-quic",
];

/** The `wrangler dev` the global setup started; throws its start-up error if it did not start. */
export function localWorker(): LocalWorker {
  const state = inject("localWorker");
  if (!state.ok) throw new Error(state.error);
  return state.worker;
}

/** The Chromium the global setup found; throws why there is none. */
function chromiumPath(): string {
  const state = inject("chromium");
  if (!state.ok) throw new Error(state.error);
  return state.path;
}

/** Seed SQL into the running Worker's local D1. */
export function seed(sql: string): Promise<void> {
  return executeSql(localWorker(), sql);
}

export interface AdminBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  /** Console errors, page errors and CSP violations so far, one line each. */
  problems: string[];
  close(): Promise<void>;
}

// Runs in every page before its own scripts; exposed bindings and init scripts are not subject to the page's CSP.
const REPORT_CSP = `document.addEventListener("securitypolicyviolation", (e) => {
  window.__reportCspViolation(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`;

/**
 * Launch Chromium (playwright's launch() gives every browser a fresh
 * temporary profile, removed on close) with one context on the local Worker.
 * Fails, never skips, when Chromium is missing or does not start.
 */
async function openAdmin(baseURL: string): Promise<AdminBrowser> {
  const executablePath = chromiumPath();
  let browser: Browser;
  try {
    browser = await chromium.launch({ executablePath, args: ARGS, timeout: 30_000 });
  } catch (e) {
    throw new Error(`Chromium at ${executablePath} failed to start: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    const problems: string[] = [];
    const context = await browser.newContext({ baseURL, viewport: { width: 1280, height: 900 } });
    await context.exposeBinding("__reportCspViolation", (_source, line: string) => problems.push(`CSP violation: ${line}`));
    await context.addInitScript({ content: REPORT_CSP });
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.type() === "error") problems.push(`console error on ${page.url()}: ${msg.text()} (${msg.location().url})`);
    });
    page.on("pageerror", (error) => problems.push(`page error on ${page.url()}: ${error.message}`));
    return { browser, context, page, problems, close: () => browser.close() };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

/**
 * The browser tests' `it`: `admin` is one Chromium per file, launched when the
 * file's first test asks for it and closed after its last. A fixture, not a
 * beforeAll: if wrangler dev or Chromium did not start, every test fails with
 * that message instead of being reported as skipped.
 */
export const test = base.extend("admin", { scope: "file" }, async ({}, { onCleanup }) => {
  const admin = await openAdmin(localWorker().baseUrl);
  onCleanup(() => admin.close());
  return admin;
});

/** Sign in through the dev sign-in page as `email`; lands on /admin/operations. */
export async function signIn(page: Page, email: string): Promise<void> {
  await page.goto("/admin/sign-in");
  await page.locator(`button[data-email="${email}"]`).click();
  await page.waitForURL("**/admin/operations");
}

/** artifacts/screenshots/<name>.png, the whole page. */
export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: resolve(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** No console error, page error or CSP violation happened on any page so far. */
export function expectNoProblems(admin: AdminBrowser): void {
  expect(admin.problems, "console errors, page errors or CSP violations").toEqual([]);
}
