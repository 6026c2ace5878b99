/**
 * `npm run bench`: the published figures, measured against the local Workers
 * runtime (`wrangler dev`, the one `npm start` uses), each in a fresh instance
 * of the bench Worker (bench/wrangler.bench.toml). Prints the table and writes
 * it with every raw number to bench/results/bench-<time>.json (and
 * bench-latest.json). Exits 1 if a figure's own check fails (a run not
 * detected, sweep cost growing with history), 2 on bad arguments.
 *
 *   npm run bench                                  all figures (~10 min)
 *   npm run bench -- --only=detection-tracker,cost one or more figures
 *   npm run bench -- --n=200 --history=10000,100000,1000000 --throughput-n=2000
 */
import { parseArgs } from "node:util";
import { detection, type DetectionResult } from "./figures/detection";
import { history, OVERDUE as OVERDUE_RUNS, type HistoryResult } from "./figures/history";
import { cost, type CostResult, type CostSample } from "./figures/cost";
import { throughput, type ThroughputResult, type ThroughputSample } from "./figures/throughput";
import { assertBenchConfigMatchesProduction } from "./lib/config";
import { benchWorkerBuild } from "./lib/dev";
import { describeMachine, describeSource, machineInfo, sourceState } from "./lib/machine";
import { fmt, renderTable, writeResults, type FigureRow } from "./lib/results";

const FIGURES = ["detection-tracker", "detection-sweep", "history", "cost", "throughput"] as const;
type Figure = (typeof FIGURES)[number];

function usage(message: string): never {
  console.error(`bench: ${message}\nusage: npm run bench -- [--only=${FIGURES.join(",")}] [--n=200] [--history=10000,100000,1000000] [--throughput-n=2000]`);
  process.exit(2);
}

function positiveInts(raw: string, what: string): number[] {
  const values = raw.split(",").map((s) => Number(s.trim()));
  if (values.length === 0 || values.some((v) => !Number.isInteger(v) || v < 1)) usage(`${what} must be positive integers, got "${raw}"`);
  return values;
}

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        only: { type: "string" },
        n: { type: "string", default: "200" },
        history: { type: "string", default: "10000,100000,1000000" },
        "throughput-n": { type: "string", default: "2000" },
      },
      strict: true,
    });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
})();

const only = args.only ? args.only.split(",").map((s) => s.trim()) : [...FIGURES];
for (const f of only) if (!(FIGURES as readonly string[]).includes(f)) usage(`unknown figure "${f}"`);
const selected = new Set(only as Figure[]);
const n = positiveInts(args.n, "--n")[0]!;
const sizes = positiveInts(args.history, "--history");
if (sizes.length < 2) usage("--history needs at least two sizes (the growth between them is the figure)");
const throughputN = positiveInts(args["throughput-n"], "--throughput-n")[0]!;

/** The command that reproduces one figure with this run's parameters. */
function commandFor(figure: Figure): string {
  const extra: string[] = [];
  if (figure.startsWith("detection") && n !== 200) extra.push(`--n=${n}`);
  if (figure === "history" && args.history !== "10000,100000,1000000") extra.push(`--history=${args.history}`);
  if (figure === "throughput" && throughputN !== 2000) extra.push(`--throughput-n=${throughputN}`);
  return `npm run bench -- --only=${figure}${extra.length ? ` ${extra.join(" ")}` : ""}`;
}

const machine = machineInfo();
const started = Date.now();
const rows: FigureRow[] = [];
const results: Record<string, unknown> = {};
const failures: string[] = [];
const timings: Record<string, number> = {};

async function step<T>(figure: Figure, run: () => Promise<T>, toRows: (r: T) => void): Promise<void> {
  if (!selected.has(figure)) return;
  console.log(`› ${figure}`);
  const t = Date.now();
  try {
    const r = await run();
    results[figure] = r;
    toRows(r);
  } catch (e) {
    failures.push(`${figure}: ${e instanceof Error ? e.message : String(e)}`);
    console.error(`  ${figure} failed: ${e instanceof Error ? e.message : String(e)}`);
  }
  timings[figure] = Date.now() - t;
  console.log(`  ${figure}: ${Math.round(timings[figure] / 1000)} s`);
}

function detectionRows(figure: Figure, label: string) {
  return (r: DetectionResult) => {
    const cmd = commandFor(figure);
    const l = r.latency;
    rows.push({
      figure: "1 detection latency",
      metric: `${label}: beyond heartbeat timeout, p50 / p99 / max (N=${r.n})`,
      value: `${fmt.ms(l.p50)} / ${fmt.ms(l.p99)} / ${fmt.ms(l.max)}`,
      command: cmd,
    });
    rows.push({
      figure: "1 detection latency",
      metric: `${label}: runs detected / resulting state`,
      value: `${r.detected} of ${r.n}: ${Object.entries(r.outcomes).map(([k, v]) => `${v} ${k}`).join(", ")}`,
      command: cmd,
    });
    if (r.detected !== r.n) failures.push(`${figure}: ${r.n - r.detected} runs not detected`);
  };
}

function historyRows(r: HistoryResult) {
  const cmd = commandFor("history");
  for (const p of r.points) {
    rows.push({
      figure: "2 sweep cost",
      metric: `100 overdue among ${fmt.int(p.terminalRuns)} terminal: rows read / written per sweep`,
      value: `${fmt.int(p.sweep.rowsRead)} / ${fmt.int(p.sweep.rowsWritten)} (idle sweep: ${p.idleSweep.rowsRead} / ${p.idleSweep.rowsWritten})`,
      previous: "701 / 1,000 (idle sweep: 1 / 0)",
      command: cmd,
    });
    rows.push({
      figure: "2 sweep cost",
      metric: `100 overdue among ${fmt.int(p.terminalRuns)} terminal: rows read / written per overdue run`,
      value: `${fmt.num((p.sweep.rowsRead - p.idleSweep.rowsRead) / OVERDUE_RUNS)} / ${fmt.num(p.sweep.rowsWritten / OVERDUE_RUNS)}`,
      previous: "7 / 10",
      command: cmd,
    });
  }
  const first = r.points[0]!;
  const last = r.points[r.points.length - 1]!;
  rows.push({
    figure: "2 sweep cost",
    metric: `growth ${fmt.int(first.terminalRuns)} → ${fmt.int(last.terminalRuns)} terminal runs (rows read / written)`,
    value: `${r.sweepReadGrowth >= 0 ? "+" : ""}${r.sweepReadGrowth} / ${r.sweepWriteGrowth >= 0 ? "+" : ""}${r.sweepWriteGrowth}: ${r.flat ? "flat" : "NOT FLAT"}`,
    command: cmd,
  });
  if (!r.flat) failures.push("history: sweep cost grows with terminal runs");
  for (const p of [first, last]) {
    rows.push({
      figure: "3 admin cost",
      metric: `${fmt.int(p.terminalRuns)} runs: first page / page at depth ${fmt.int(p.adminDeep.depth)}, rows read`,
      value: `${fmt.int(p.adminFirst.rowsRead)} / ${fmt.int(p.adminDeep.rowsRead)} (tiles show ${fmt.int(p.adminFirst.tiles.failures24h ?? 0)} failures of 24 h, read from hourly counters)`,
      previous: p === first ? "1,228 / 1,228 at 10k runs" : "4,196 / 4,196 at 1M runs",
      command: cmd,
    });
    rows.push({
      figure: "3 admin cost",
      metric: `${fmt.int(p.terminalRuns)} runs: live poll with nothing transitioned (${p.adminFirst.poll.liveRows} live rows on the page), rows read`,
      value: `${fmt.int(p.adminFirst.poll.d1.rowsRead)} in ${p.adminFirst.poll.d1.roundTrips} round trip (${p.adminFirst.poll.kind === "rows" ? "live rows only" : "full refresh"})`,
      command: cmd,
    });
    rows.push({
      figure: "3 admin cost",
      metric: `${fmt.int(p.terminalRuns)} runs: first page / deep page, HTTP time (median of 5)`,
      value: `${fmt.ms(p.adminFirst.pageMs)} / ${fmt.ms(p.adminDeep.pageMs)} (query ${fmt.ms(p.adminFirst.queryMs)} / ${fmt.ms(p.adminDeep.queryMs)})`,
      command: cmd,
    });
  }
}

function costRows(r: CostResult) {
  const cmd = commandFor("cost");
  const s = r.perShortRun;
  const h = r.perHeartbeatMinute;
  rows.push({
    figure: "4 cost per run",
    metric: "successful short run: D1 rows written / read",
    value: `${fmt.num(s.d1RowsWritten)} / ${fmt.num(s.d1RowsRead)} (${fmt.num(s.d1RoundTrips)} round trips)`,
    previous: "31 / 14 (7 round trips)",
    command: cmd,
  });
  rows.push({
    figure: "4 cost per run",
    metric: "successful short run: DO requests / queue operations",
    value: `${fmt.num(s.doRequests)} (+1 clean-up alarm at +15 min) / ${fmt.num(s.queueOperations)}`,
    previous: "3 / 3",
    command: cmd,
  });
  rows.push({
    figure: "4 cost per run",
    metric: "successful short run: tracker storage rows written (keys put + alarms set)",
    value: `${fmt.num(s.doStorageRowsWritten)} (${storageCalls(s)})`,
    previous: "not counted",
    command: cmd,
  });
  rows.push({
    figure: "4 cost per run",
    metric: "per minute of heartbeating: D1 rows written / read",
    value: `${fmt.num(h.d1RowsWritten)} / ${fmt.num(h.d1RowsRead)} (${fmt.num(h.d1RoundTrips)} round trips)`,
    previous: "24 / 12 (12 round trips)",
    command: cmd,
  });
  rows.push({
    figure: "4 cost per run",
    metric: "per minute of heartbeating: DO requests (RPC + alarms) / queue operations",
    value: `${fmt.num(h.doRequests)} (${fmt.num(h.doRequests - h.doAlarms)} + ${fmt.num(h.doAlarms)}) / ${fmt.num(h.queueOperations)}`,
    previous: "74.8 (59.8 + 15) / 0",
    command: cmd,
  });
  rows.push({
    figure: "4 cost per run",
    metric: "per minute of heartbeating: tracker storage rows written (keys put + alarms set)",
    value: `${fmt.num(h.doStorageRowsWritten)} (${storageCalls(h)})`,
    previous: "not counted",
    command: cmd,
  });
}

function storageCalls(c: CostSample): string {
  return Object.entries(c.doStorage).map(([k, v]) => `${k} ${fmt.num(v)}`).join(", ") || "none";
}

function throughputRows(r: ThroughputResult) {
  const cmd = commandFor("throughput");
  // "previous": commit 14d480f (issue 12's baseline), measured on 2026-11-30 with this figure's
  // method (2 rounds of 2,000 each, state on disk and in memory); BENCHMARKS.md, figure 5.
  const samples: [ThroughputSample | null, string, string][] = [
    [r.disk, "state on disk", "0.24 (0.24, 0.23)"],
    [r.memory, "state in memory (/dev/shm)", "0.33 (0.34, 0.32)"],
  ];
  for (const [s, where, previous] of samples) {
    if (!s) {
      rows.push({ figure: "5 throughput", metric: `ratio runs/s ÷ bare msgs/s, ${where}`, value: "not measured: no /dev/shm here", command: cmd });
      continue;
    }
    rows.push({
      figure: "5 throughput",
      metric: `noop runs/s end to end : bare consumer msgs/s (same process), ${where}`,
      value: `${fmt.num(s.runsPerSecond, 1)} : ${fmt.num(s.barePerSecond, 1)}`,
      command: cmd,
    });
    rows.push({
      figure: "5 throughput",
      metric: `ratio runs/s ÷ bare msgs/s (per round), ${where}`,
      value: `${fmt.num(s.ratio)} (${pairs(s).join(", ")})`,
      previous,
      command: cmd,
    });
  }
}

function pairs(r: ThroughputSample): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < r.rounds.length; i += 2) out.push(fmt.num(r.rounds[i]!.perSecond / r.rounds[i + 1]!.perSecond));
  return out;
}

try {
  await assertBenchConfigMatchesProduction();
} catch (e) {
  console.error(`bench: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}
console.log(`bench on ${describeMachine(machine)}`);
// One build for every figure: the code measured is the code at this moment.
await benchWorkerBuild();
const source = sourceState();
console.log(`bench Worker built from ${describeSource(source)}`);
await step("detection-tracker", () => detection("tracker", n), detectionRows("detection-tracker", "tracker path"));
await step("detection-sweep", () => detection("sweep", n), detectionRows("detection-sweep", "sweep path, trackers unable to act"));
await step("history", () => history(sizes), historyRows);
await step("cost", () => cost(100, 10), costRows);
await step("throughput", () => throughput(throughputN), throughputRows);

const totalMs = Date.now() - started;
const invocation = `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;
console.log(`\n${renderTable(rows)}\n`);
console.log(`machine: ${describeMachine(machine)}; code: ${describeSource(source)}`);
console.log(`command: ${invocation}; took ${Math.round(totalMs / 1000)} s (${Object.entries(timings).map(([k, v]) => `${k} ${Math.round(v / 1000)} s`).join(", ")})`);
const path = writeResults("bench", { invocation, machine, source, startedAt: new Date(started).toISOString(), totalMs, timings, rows, results, failures });
console.log(`wrote ${path}`);
if (failures.length > 0) {
  console.error(`\n${failures.length} check(s) failed:\n- ${failures.join("\n- ")}`);
  process.exitCode = 1;
}
