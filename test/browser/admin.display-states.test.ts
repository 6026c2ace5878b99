/**
 * Browser: the operations page shows every display state of the contract
 * (section 6) with its own badge, and a stale run never has the look of
 * healthy activity. Runs are seeded with controlled timestamps in a
 * workspace of this file's own.
 */
import { describe, expect } from "vitest";
import type { Page } from "playwright-core";
import { DISPLAY_STATES, type DisplayStateKind } from "../../src/lifecycle";
import { expectNoProblems, screenshot, seed, signIn, test } from "./support/browser";
import { freshenLiveRunsSql, runsSql, workspaceSql } from "./support/fixtures";

const LABELS: Record<DisplayStateKind, RegExp> = {
  queued: /^Queued$/,
  retrying: /^Retrying$/,
  queued_overdue: /^Queued · overdue$/,
  running: /^Running$/,
  running_stale: /^Running · no heartbeat for \d+ min$/,
  succeeded: /^Succeeded$/,
  partially_succeeded: /^Partially succeeded$/,
  failed: /^Failed$/,
  failed_reconciled: /^Failed · reconciled by sweep$/,
  cancelling: /^Cancelling$/,
  cancelled: /^Cancelled by operator@demo\.test$/,
};

interface BadgeLook {
  rowDisplay: string | null;
  badgeDisplay: string | null;
  badgeClass: string;
  label: string;
  visible: boolean;
  background: string;
  color: string;
  borderStyle: string;
  borderColor: string;
  iconAnimation: string;
}

/** WCAG 2 contrast ratio of two `rgb(r, g, b)` colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, b_] = (c.match(/\d+(\.\d+)?/g) ?? []).slice(0, 3).map((v) => {
      const s = Number(v) / 255;
      return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * b_!;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/** How long to keep trying to read the live runs as live before the assertions get what was seen. */
const READ_DEADLINE_MS = 120_000;

/** Every badge on the page, by the kind of the seeded run it belongs to, in one snapshot. */
function readBadges(page: Page, ids: Record<DisplayStateKind, string>): Promise<Partial<Record<DisplayStateKind, BadgeLook>>> {
  return page.evaluate((ids) => {
    const out: Record<string, BadgeLook> = {};
    for (const [kind, id] of Object.entries(ids)) {
      const row = document.querySelector<HTMLElement>(`tr[data-run-id="${id}"]`);
      const badge = row?.querySelector<HTMLElement>(".badge");
      if (!row || !badge) continue;
      const style = getComputedStyle(badge);
      const icon = badge.querySelector("span[aria-hidden]");
      out[kind] = {
        rowDisplay: row.getAttribute("data-display"),
        badgeDisplay: badge.getAttribute("data-display"),
        badgeClass: badge.className,
        label: (badge.textContent ?? "").replace(/^\S+\s+/, "").trim(),
        visible: badge.getBoundingClientRect().height > 0 && style.visibility !== "hidden",
        background: style.backgroundColor,
        color: style.color,
        borderStyle: style.borderTopStyle,
        borderColor: style.borderTopColor,
        iconAnimation: icon ? getComputedStyle(icon).animationName : "none",
      };
    }
    return out;
  }, ids);
}

/**
 * `badge(kind)`: how the seeded run in that display state looks, read in one
 * snapshot of the page. The running run is fresh for STALE_AFTER_MS after its
 * heartbeat only, and the queued one for a couple of minutes: when the
 * machine took longer than that between seeding and reading (the reading, not
 * the page, was late), their heartbeat and deadline are freshened the way the
 * system would and the page is read again, until READ_DEADLINE_MS. What was
 * seen last goes to the assertions, so a page that never shows them live fails.
 */
const it = test.extend("badge", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("states");
  const { runs, sql } = runsSql(ws.workspace.id, DISPLAY_STATES);
  const ids = Object.fromEntries(DISPLAY_STATES.map((k) => [k, runs[k].id])) as Record<DisplayStateKind, string>;
  await seed(ws.sql + sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  let looks = await readBadges(admin.page, ids);
  const until = Date.now() + READ_DEADLINE_MS;
  while ((looks.running?.rowDisplay !== "running" || looks.queued?.rowDisplay !== "queued") && Date.now() < until) {
    await seed(freshenLiveRunsSql({ running: ids.running, queued: ids.queued }));
    await admin.page.goto("/admin/operations");
    looks = await readBadges(admin.page, ids);
  }
  await screenshot(admin.page, "operations-display-states");
  return (kind: DisplayStateKind): BadgeLook => {
    const found = looks[kind];
    if (!found) throw new Error(`no row with a badge for the ${kind} run (${runs[kind].id})`);
    return found;
  };
});

describe("operations page display states (browser)", () => {
  it(`shows each of the ${DISPLAY_STATES.length} display states on its row, with that state's badge and label`, ({ admin, badge }) => {
    for (const kind of DISPLAY_STATES) {
      const { rowDisplay, badgeDisplay, badgeClass, label, visible } = badge(kind);
      expect(rowDisplay, kind).toBe(kind);
      expect(badgeDisplay, kind).toBe(kind);
      expect(badgeClass.split(/\s+/), kind).toEqual(["badge", `badge--${kind}`]);
      expect(label, kind).toMatch(LABELS[kind]);
      expect(visible, kind).toBe(true);
    }
    expectNoProblems(admin);
  });

  it("never gives a stale run the look of healthy activity", ({ badge }) => {
    const pairs: Array<[DisplayStateKind, DisplayStateKind]> = [
      ["running", "running_stale"],
      ["queued", "queued_overdue"],
    ];
    for (const [live, stale] of pairs) {
      expect(badge(stale).background, `${stale} vs ${live} background`).not.toBe(badge(live).background);
      expect(badge(stale).color, `${stale} vs ${live} text colour`).not.toBe(badge(live).color);
      expect(badge(stale).borderStyle, `${stale} border`).toBe("dashed");
      expect(badge(live).borderStyle, `${live} border`).toBe("solid");
    }
    // Waiting for a retry never looks like fresh queued work: its own colours and a dotted border.
    expect(badge("retrying").background).not.toBe(badge("queued").background);
    expect(badge("retrying").color).not.toBe(badge("queued").color);
    expect(badge("retrying").borderStyle).toBe("dotted");
    // Only healthy running work pulses.
    expect(badge("running").iconAnimation).toBe("pulse");
    expect(badge("running_stale").iconAnimation).toBe("none");
    // And no stale look is shared with any healthy or finished state.
    for (const kind of DISPLAY_STATES.filter((k) => k !== "running_stale" && k !== "queued_overdue")) {
      expect(badge(kind).background, `${kind} must not look stale`).not.toBe(badge("running_stale").background);
    }
    // Every state has a look of its own, apart from the two stale ones, which share the stale look on purpose.
    const looks = DISPLAY_STATES.filter((k) => k !== "queued_overdue").map((k) => `${badge(k).background}|${badge(k).color}|${badge(k).borderStyle}`);
    expect(new Set(looks).size).toBe(looks.length);
    // The stale badge's dashed border stands out from the white page: ≥ 3:1 (WCAG 1.4.11, non-text contrast).
    for (const kind of ["queued_overdue", "running_stale"] as const) {
      expect(contrast(badge(kind).borderColor, "rgb(255, 255, 255)"), `${kind} border ${badge(kind).borderColor}`).toBeGreaterThanOrEqual(3);
    }
  });
});
