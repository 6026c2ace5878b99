/**
 * Accessibility and look helpers for the browser tests: an axe-core scan
 * (through @axe-core/playwright, run inside the page) that fails on serious
 * or critical violations, and screenshots at the size the issue asks for.
 */
import { AxeBuilder } from "@axe-core/playwright";
import type { Page } from "playwright-core";
import { expect } from "vitest";
import { screenshot } from "./browser";

/** What every page screenshot is taken at. */
export const SHOT_VIEWPORT = { width: 1400, height: 1000 } as const;

/** axe's impacts that fail a page. */
const FAILING = new Set(["serious", "critical"]);

/**
 * Scan the page as it is now with axe-core (every rule axe runs by default,
 * WCAG 2.x A/AA and best practices); serious and critical violations fail,
 * each named with its rule, help text and the elements it found.
 */
export async function expectAccessible(page: Page, what: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const failing = result.violations
    .filter((v) => FAILING.has(v.impact ?? ""))
    .map((v) => `${v.impact} ${v.id}: ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).slice(0, 5).join(", ")}`);
  expect(failing, `axe on ${what} (${page.url()})`).toEqual([]);
}

/** The page at 1400×1000, whole, as artifacts/screenshots/<name>.png. */
export async function screenshotAt1400(page: Page, name: string): Promise<void> {
  await page.setViewportSize(SHOT_VIEWPORT);
  await screenshot(page, name);
}
