/** Figures as rows (printed as a table) and the JSON written to bench/results/. */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { ROOT } from "../../scripts/lib/project";

export const RESULTS_DIR = resolve(ROOT, "bench/results");

export interface FigureRow {
  figure: string;
  metric: string;
  value: string;
  /** The same figure as last published (BENCHMARKS.md), where it was measured before. */
  previous?: string;
  /** The command that produced it. */
  command: string;
}

export function renderTable(rows: readonly FigureRow[]): string {
  const headers = ["figure", "metric", "value", "previous", "command"] as const;
  const cell = (r: FigureRow, h: (typeof headers)[number]) => (h === "previous" ? (r.previous ?? "") : r[h]);
  const widths = headers.map((h) => Math.max(h.length, ...rows.map((r) => cell(r, h).length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(" | ")} |`;
  return [line(headers), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`, ...rows.map((r) => line(headers.map((h) => cell(r, h))))].join("\n");
}

/** Write `data` as bench/results/<name>-<timestamp>.json and <name>-latest.json; returns the first path. */
export function writeResults(name: string, data: unknown): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
  const path = resolve(RESULTS_DIR, `${name}-${stamp}.json`);
  const text = `${JSON.stringify(data, null, 2)}\n`;
  writeFileSync(path, text);
  writeFileSync(resolve(RESULTS_DIR, `${name}-latest.json`), text);
  return path;
}

export const fmt = {
  ms: (v: number) => (Number.isFinite(v) ? `${Math.round(v).toLocaleString("en-US")} ms` : "n/a"),
  int: (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a"),
  num: (v: number, d = 2) => (Number.isFinite(v) ? v.toLocaleString("en-US", { maximumFractionDigits: d }) : "n/a"),
};
