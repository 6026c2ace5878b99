// longestCronGapMs: the cron interval T7 compares with the stale thresholds.
import { describe, expect, it } from "vitest";
import { longestCronGapMs } from "../../src/lifecycle";

const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

describe("longestCronGapMs", () => {
  it.each([
    { crons: ["* * * * *"], gap: MIN },
    { crons: ["*/5 * * * *"], gap: 5 * MIN },
    { crons: ["*/30 * * * *"], gap: 30 * MIN },
    { crons: ["0,30 * * * *"], gap: 30 * MIN },
    { crons: ["0 * * * *"], gap: HOUR },
    { crons: ["10/25 * * * *"], gap: 35 * MIN }, // :10, :35, then :10 of the next hour
    { crons: ["0 9-17 * * *"], gap: 16 * HOUR }, // 17:00 → 09:00
    { crons: ["0 */6 * * *"], gap: 6 * HOUR },
    { crons: ["0 0 * * *"], gap: DAY },
  ])("$crons → $gap ms", ({ crons, gap }) => {
    expect(longestCronGapMs(crons)).toBe(gap);
  });

  it("takes the union of several crons", () => {
    expect(longestCronGapMs(["0 * * * *", "30 * * * *"])).toBe(30 * MIN);
    expect(longestCronGapMs(["*/5 * * * *", "* * * * *"])).toBe(MIN);
    expect(longestCronGapMs(["0 0 * * *", "0 12 * * *"])).toBe(12 * HOUR);
  });

  it("a weekly schedule fires every 7 days", () => {
    expect(longestCronGapMs(["0 0 * * MON"])).toBe(7 * DAY);
    expect(longestCronGapMs(["0 0 * * mon"])).toBe(7 * DAY);
  });

  it("weekdays only: the longest gap spans the weekend", () => {
    expect(longestCronGapMs(["0 9 * * MON-FRI"])).toBe(3 * DAY);
  });

  it("numbers weekdays as Cloudflare does: 1 = Sunday … 7 = Saturday", () => {
    // 2 is Monday on Cloudflare, so MON,2 is one day a week (classic cron would read Monday and Tuesday).
    expect(longestCronGapMs(["0 0 * * MON,2"])).toBe(7 * DAY);
    expect(longestCronGapMs(["0 0 * * SUN,1"])).toBe(7 * DAY);
    expect(longestCronGapMs(["0 0 * * SAT,7"])).toBe(7 * DAY);
    expect(longestCronGapMs(["0 9 * * 2-6"])).toBe(3 * DAY); // Monday–Friday
    expect(longestCronGapMs(["0 0 * * 1-7"])).toBe(DAY);
  });

  it("a monthly schedule's gap is the longest month (≥ 28 days)", () => {
    const gap = longestCronGapMs(["0 0 1 * *"]);
    expect(gap).toBeGreaterThanOrEqual(28 * DAY);
    expect(gap).toBe(31 * DAY);
  });

  it("a yearly schedule is measured over a whole year", () => {
    expect(longestCronGapMs(["0 0 1 1 *"])).toBe(365 * DAY);
  });

  it("a schedule that fires once in the scanned window counts as at least a year apart", () => {
    expect(longestCronGapMs(["0 0 15 6 *"])).toBeGreaterThanOrEqual(365 * DAY);
  });

  it("a schedule confined to part of the year still reports the gap to next year", () => {
    // Daily in December: the real longest gap is 31 Dec → 1 Dec, 336 days, never 1 day.
    const december = longestCronGapMs(["0 0 * 12 *"]);
    expect(december).toBeGreaterThanOrEqual(300 * DAY);
    expect(december).toBeLessThanOrEqual(336 * DAY);
    // Sundays in February: last Sunday of one February → first of the next.
    expect(longestCronGapMs(["0 0 * 2 SUN"])).toBeGreaterThanOrEqual(300 * DAY);
  });

  it("when both day fields are restricted, either may match (classic cron)", () => {
    // The 1st of each month or any Monday: never more than a week apart.
    expect(longestCronGapMs(["0 0 1 * MON"])).toBe(7 * DAY);
  });

  it("month names are accepted", () => {
    expect(longestCronGapMs(["0 0 1 jan,jul *"])).toBe(184 * DAY); // 1 Jul → 1 Jan
  });

  it("an empty list never fires", () => {
    expect(longestCronGapMs([])).toBe(Infinity);
  });

  it.each([
    "0 0 L * *", // last day of month: valid on Cloudflare, not understood here
    "0 0 * * MON#2",
    "0 0 * * 0", // 0 is not a Cloudflare weekday
    "0 0 * * 8",
    "60 * * * *",
    "* 24 * * *",
    "0 0 0 * *",
    "0 0 * 13 *",
    "0 0 * mon *", // a day name in the month field
    "jan * * * *",
    "*/0 * * * *",
    "-5 * * * *",
    "? * * * *",
    "* * * *",
    "0 * * * * *",
  ])("unsupported %j throws with the expression in the message", (expr) => {
    expect(() => longestCronGapMs([expr])).toThrow(expr);
  });

  it("one unsupported expression fails the whole set", () => {
    expect(() => longestCronGapMs(["* * * * *", "0 0 L * *"])).toThrow("0 0 L * *");
  });
});
