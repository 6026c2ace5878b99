/**
 * The longest gap between two firings of a set of cron expressions, for T7.
 * Supports the syntax Cloudflare Cron Triggers accept for the five fields:
 * `*`, numbers, ranges, steps, lists and day/month names. Unsupported syntax
 * throws, so a contract check never silently passes on a schedule it misread.
 */
const NO_NAMES: Record<string, number> = {};
const MONTH_NAMES: Record<string, number> = {
  jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12,
};
// Cloudflare numbers weekdays 1 = Sunday … 7 = Saturday, unlike classic cron's 0 = Sunday:
// https://developers.cloudflare.com/workers/configuration/cron-triggers/#supported-cron-expressions
const DAY_NAMES: Record<string, number> = { sun: 1, mon: 2, tue: 3, wed: 4, thu: 5, fri: 6, sat: 7 };

const FIELDS = [
  { name: "minute", min: 0, max: 59, names: NO_NAMES },
  { name: "hour", min: 0, max: 23, names: NO_NAMES },
  { name: "day of month", min: 1, max: 31, names: NO_NAMES },
  { name: "month", min: 1, max: 12, names: MONTH_NAMES },
  { name: "day of week", min: 1, max: 7, names: DAY_NAMES },
] as const;

function parseValue(raw: string, field: (typeof FIELDS)[number], expr: string): number {
  const lower = raw.toLowerCase();
  const n = Object.hasOwn(field.names, lower) ? field.names[lower]! : /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < field.min || n > field.max) {
    throw new Error(`cron "${expr}": ${field.name} value "${raw}" is not supported`);
  }
  return n;
}

function parseField(text: string, field: (typeof FIELDS)[number], expr: string): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(",")) {
    const [rangeText, stepText] = part.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1 || rangeText === undefined || rangeText === "") {
      throw new Error(`cron "${expr}": ${field.name} part "${part}" is not supported`);
    }
    let lo: number;
    let hi: number;
    if (rangeText === "*") {
      lo = field.min;
      hi = field.max;
    } else if (rangeText.includes("-")) {
      const [a, b] = rangeText.split("-");
      lo = parseValue(a ?? "", field, expr);
      hi = parseValue(b ?? "", field, expr);
    } else {
      lo = parseValue(rangeText, field, expr);
      hi = stepText === undefined ? lo : field.max;
    }
    // Weekdays are stored as JavaScript's getUTCDay() (0 = Sunday).
    for (let v = lo; v <= hi; v += step) out.add(field.name === "day of week" ? v - 1 : v);
  }
  return out;
}

interface Schedule {
  fields: Set<number>[];
  domStar: boolean;
  dowStar: boolean;
  /** Repeats within a week: day of month and month unrestricted. */
  weekly: boolean;
}

function parseCron(expr: string): Schedule {
  const parts = expr.trim().split(/\s+/);
  if (parts.length !== 5) throw new Error(`cron "${expr}": expected 5 fields, got ${parts.length}`);
  return {
    fields: parts.map((p, i) => parseField(p, FIELDS[i]!, expr)),
    domStar: parts[2] === "*",
    dowStar: parts[4] === "*",
    weekly: parts[2] === "*" && parts[3] === "*",
  };
}

function fires(s: Schedule, d: Date): boolean {
  const [min, hour, dom, month, dow] = s.fields as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  if (!min.has(d.getUTCMinutes()) || !hour.has(d.getUTCHours()) || !month.has(d.getUTCMonth() + 1)) return false;
  const domOk = dom.has(d.getUTCDate());
  const dowOk = dow.has(d.getUTCDay());
  // Classic cron: when both day fields are restricted, either may match.
  if (!s.domStar && !s.dowStar) return domOk || dowOk;
  return domOk && dowOk;
}

/**
 * The longest interval, in ms, between consecutive firings of all `crons`
 * together, scanned minute by minute over two weeks, or over 400 days when a
 * schedule restricts day of month or month (so monthly and yearly schedules
 * are measured too). `Infinity` when nothing fires.
 */
export function longestCronGapMs(crons: readonly string[]): number {
  const schedules = crons.map(parseCron);
  if (schedules.length === 0) return Infinity;
  const start = Date.UTC(2026, 0, 1);
  const minutes = (schedules.every((s) => s.weekly) ? 14 : 400) * 24 * 60;
  let first = -1;
  let last = -1;
  let gap = 0;
  for (let m = 0; m < minutes; m++) {
    const d = new Date(start + m * 60_000);
    if (!schedules.some((s) => fires(s, d))) continue;
    if (first < 0) first = m;
    else gap = Math.max(gap, m - last);
    last = m;
  }
  if (first < 0) return Infinity;
  // The gap that wraps around the window counts too (a yearly schedule fires once).
  if (first === last) return minutes * 60_000;
  // So do the open gaps the window's edges cut (a December-only schedule fires nowhere
  // else in the window): each is a real gap at least that long.
  return Math.max(gap, first, minutes - last) * 60_000;
}
