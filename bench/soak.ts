/**
 * `npm run soak`: at least 10,000 runs of mixed behaviours (success, failure,
 * partial, retry, retries exhausted, hang, a hung sibling holding its batch,
 * mid-run death, duplicate delivery) through the production API and queue of
 * the bench Worker under `wrangler dev`, with the whole local runtime
 * SIGKILLed (launcher, wrangler, workerd) while attempts are running, and
 * started again on the same state, at least twice, and a share of
 * production's D1 writes failing (before or after they commit; 1 % by
 * default, bench/worker/d1-faults.ts). The cron fires every wall-clock minute
 * throughout, as deployed.
 *
 * At the end, read from D1 by `wrangler d1 execute` with the runtime stopped
 * (not through the Worker under test):
 * - every accepted run exists (none lost) and is terminal;
 * - exactly one terminal audit event per run (run.completed, run.failed or
 *   run.reconciled) and exactly one run.queued;
 * - every reconciled run carries evidence (diagnostics and its event);
 * - runs no fault touched ended as their behaviour says (execution outcomes
 *   only; lifecycle reconciliations are counted, not failed: after a kill a
 *   run whose message the local queue lost is correctly reconciled);
 * - no verdict is contradicted by the evidence gathered independently of the
 *   system (the kills, the crashes of dying behaviours, the injected D1
 *   faults, each run's own trail; bench/lib/evidence.ts): e.g. stale_queued
 *   while its dispatch was held, a late success after a failure verdict, a
 *   healthy attempt declared lost with no kill or crash during it.
 * Prints the counts, writes bench/results/soak-<time>.json, exits 1 if any
 * check fails (2 on bad arguments). Bounded: a global deadline (28 min by
 * default) stops production and the wait for convergence.
 *
 *   npm run soak                          10,000 runs, 2 kills
 *   npm run soak -- --runs=2000 --kills=3 --deadline-min=15
 *   npm run soak -- --d1-fault-rate=0      no injected D1 faults
 */
import { mkdtempSync, rmSync, copyFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BenchClient } from "./lib/client";
import { assertBenchConfigMatchesProduction } from "./lib/config";
import { benchWorkerBuild, d1Execute, DevServer, sleep, SOAK_CONFIG, WORKSPACE } from "./lib/dev";
import { emulateCron, LOG_DIR } from "./lib/instance";
import { describeMachine, describeSource, machineInfo, sourceState } from "./lib/machine";
import { DIES, EXPECTED, plan, SUCCEEDS, type Behaviour, type Planned } from "./lib/behaviours";
import { CONTRADICTIONS, contradictions, type Contradiction, type TrailEvent } from "./lib/evidence";
import { writeResults } from "./lib/results";

function usage(message: string): never {
  console.error(`soak: ${message}\nusage: npm run soak -- [--runs=10000] [--kills=2] [--deadline-min=28] [--window=200] [--concurrency=8] [--d1-fault-rate=0.01]`);
  process.exit(2);
}

const { values: raw } = (() => {
  try {
    return parseArgs({
      options: {
        runs: { type: "string", default: "10000" },
        kills: { type: "string", default: "2" },
        "deadline-min": { type: "string", default: "28" },
        window: { type: "string", default: "200" },
        concurrency: { type: "string", default: "8" },
        "d1-fault-rate": { type: "string", default: "0.01" },
      },
      strict: true,
    });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
})();

function int(name: string, value: string, min: number): number {
  const v = Number(value);
  if (!Number.isInteger(v) || v < min) usage(`--${name} must be an integer ≥ ${min}, got "${value}"`);
  return v;
}

const N = int("runs", raw.runs, 1);
const KILLS = int("kills", raw.kills, 0);
const DEADLINE = Date.now() + int("deadline-min", raw["deadline-min"], 1) * 60_000;
const WINDOW = int("window", raw.window, 10);
const CONCURRENCY = int("concurrency", raw.concurrency, 1);
const D1_FAULT_RATE = Number(raw["d1-fault-rate"]);
if (!(D1_FAULT_RATE >= 0 && D1_FAULT_RATE <= 1)) usage(`--d1-fault-rate must be a share from 0 to 1, got "${raw["d1-fault-rate"]}"`);
const invocation = `npm run soak${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`;

try {
  await assertBenchConfigMatchesProduction(SOAK_CONFIG);
} catch (e) {
  console.error(`soak: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}

const machine = machineInfo();
const started = Date.now();
const dir = mkdtempSync(join(tmpdir(), "oplife-soak-"));
const dev = new DevServer({ dir, label: "soak", config: SOAK_CONFIG, vars: { BENCH_D1_FAULT_RATE: String(D1_FAULT_RATE) } });
const client = new BenchClient(dev);
const planned = plan(N);

// --- What the Worker logs, counted (for the report, not for the checks). ---
const logCounts: Record<string, number> = {};
dev.onLog((e) => {
  const refusal = typeof e.fields.refusal === "string" ? `:${e.fields.refusal}` : "";
  const key = `${e.event}${e.event === "consumer.claim_refused" ? refusal : ""}`;
  logCounts[key] = (logCounts[key] ?? 0) + 1;
});

// --- The D1 faults the bench Worker injected (evidence: which runs they touched). ---
const d1Faults = { before_commit: 0, after_commit: 0 };
const d1FaultRuns = new Set<string>();
dev.onLog((e) => {
  if (e.event !== "bench.d1_fault") return;
  if (e.fields.when === "before_commit" || e.fields.when === "after_commit") d1Faults[e.fields.when]++;
  if (Array.isArray(e.fields.runIds)) for (const id of e.fields.runIds) if (typeof id === "string") d1FaultRuns.add(id);
});

// --- The runtime's availability: producers wait while it is down. ---
let up = Promise.resolve();
let reopen: () => void = () => {};
let restartedAt = 0;
const kills: { at: number; accepted: number; running: number; runningBehaviours: Record<string, number>; downMs: number }[] = [];

const accepted = new Map<number, string>();
const counts = { postRetries: 0, duplicatesSent: 0, duplicateFailures: 0, conflicts: 0 };
let outstanding = 0;
let stopProducing = false;
const pending: Promise<void>[] = [];

async function duplicate(runId: string): Promise<void> {
  try {
    await up;
    await client.bench("/duplicate", { runIds: [runId] }, 15_000);
    counts.duplicatesSent++;
  } catch {
    counts.duplicateFailures++;
  }
}

async function submit(p: Planned): Promise<void> {
  for (let attempt = 0; attempt < 30 && !stopProducing; attempt++) {
    await up;
    try {
      const r = await client.createRun("demo.work", p.input, { idempotencyKey: `soak-${p.index}`, timeoutMs: 20_000 });
      if (!r.id) throw new Error("no run id");
      accepted.set(p.index, r.id);
      if (p.duplicate === "immediate") await duplicate(r.id);
      if (p.duplicate === "delayed") pending.push(sleep(3_000).then(() => duplicate(r.id!)));
      return;
    } catch (e) {
      if (e instanceof Error && e.message.includes("HTTP 409")) {
        counts.conflicts++;
        return;
      }
      // The runtime was killed under the request: the same idempotency key makes the retry safe.
      counts.postRetries++;
      await sleep(500);
    }
  }
}

async function producer(next: () => Planned | undefined): Promise<void> {
  for (let p = next(); p && !stopProducing; p = next()) {
    while (outstanding >= WINDOW && !stopProducing) await sleep(200);
    await submit(p);
  }
}

async function nonTerminal(sinceRestart: boolean): Promise<number> {
  const [r] = await client.sql<{ n: number }>(
    `SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ? AND status <> 'completed'${sinceRestart ? " AND created_at >= ?" : ""}`,
    sinceRestart ? [WORKSPACE, restartedAt] : [WORKSPACE],
    15_000,
  );
  return r?.n ?? 0;
}

/** Kill the runtime with SIGKILL while attempts are running, then start it again on the same state. */
async function killAndRestart(): Promise<void> {
  let running: { n: number; input: string }[] = [];
  for (let i = 0; i < 60 && running.length === 0; i++) {
    running = await client.sql<{ n: number; input: string }>(
      "SELECT COUNT(*) AS n, input FROM operation_runs WHERE workspace_id = ? AND status = 'running' GROUP BY input",
      [WORKSPACE],
      15_000,
    );
    if (running.length === 0) await sleep(250);
  }
  const byBehaviour: Record<string, number> = {};
  for (const r of running) {
    const b = (Object.entries(EXPECTED) as [Behaviour, string[]][]).find(([k]) => JSON.stringify(planned.find((p) => p.behaviour === k)?.input) === r.input)?.[0] ?? r.input;
    byBehaviour[b] = (byBehaviour[b] ?? 0) + r.n;
  }
  const total = running.reduce((a, r) => a + r.n, 0);
  up = new Promise((res) => (reopen = res));
  const at = Date.now();
  await dev.kill();
  console.log(`  SIGKILL #${dev.kills} at ${accepted.size} accepted, ${total} attempts running (${JSON.stringify(byBehaviour)})`);
  await sleep(1_000);
  for (let tries = 1; ; tries++) {
    try {
      await dev.start();
      break;
    } catch (e) {
      if (tries >= 3) throw e;
      await sleep(2_000);
    }
  }
  restartedAt = Date.now();
  kills.push({ at, accepted: accepted.size, running: total, runningBehaviours: byBehaviour, downMs: restartedAt - at });
  console.log(`  restarted after ${restartedAt - at} ms`);
  reopen();
}

interface RunRow {
  id: string;
  k: string | null;
  status: string;
  outcome: string;
  reason: string | null;
  rb: string | null;
  attempt: number;
  detected_by: string | null;
  evidence_type: string | null;
  has_message: number;
  terminal_events: number;
  queued_events: number;
  reconciled_with_evidence: number;
  started_events: number;
  late: number;
  lost: number;
}

const VERIFY_SQL = `SELECT r.id, r.idempotency_key AS k, r.status, r.outcome, r.reason_code AS reason, r.reconciled_by AS rb, r.attempt,
  json_extract(r.diagnostics, '$.detectedBy') AS detected_by, json_type(r.diagnostics, '$.evidence') AS evidence_type,
  r.failure_message IS NOT NULL AS has_message,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action IN ('run.completed', 'run.failed', 'run.reconciled')) AS terminal_events,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action = 'run.queued') AS queued_events,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action = 'run.reconciled' AND json_type(e.metadata, '$.evidence') = 'object') AS reconciled_with_evidence,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action = 'run.attempt_started') AS started_events,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action = 'run.late_result_discarded') AS late,
  (SELECT COUNT(*) FROM audit_events e WHERE e.subject_type = 'run' AND e.subject_id = r.id AND e.action = 'run.attempt_lost') AS lost
FROM operation_runs r WHERE r.workspace_id = '${WORKSPACE}'`;

// Every run's audit trail, in order, for the evidence check (late results keep the outcome they reported).
const EVENTS_SQL = `SELECT subject_id AS r, action AS a, created_at AS t, json_extract(metadata, '$.reported.outcome') AS o
FROM audit_events WHERE workspace_id = '${WORKSPACE}' AND subject_type = 'run' ORDER BY id`;

interface EventRow {
  r: string;
  a: string;
  t: number;
  o: string | null;
}

const failures: string[] = [];
let report: Record<string, unknown> = {};
let source: ReturnType<typeof sourceState> | undefined;
let cron: { stop(): void } | null = null;
try {
  console.log(`soak: ${N.toLocaleString("en-US")} runs, ${KILLS} SIGKILLs, ${+(D1_FAULT_RATE * 100).toFixed(3)} % of D1 writes failing, on ${describeMachine(machine)}`);
  // One build for the whole soak: every restart after a kill runs the same code.
  await benchWorkerBuild(SOAK_CONFIG);
  source = sourceState();
  console.log(`bench Worker built from ${describeSource(source)}`);
  await dev.prepare();
  await dev.start();
  restartedAt = Date.now();
  cron = emulateCron(client);

  // Outstanding (non-terminal) runs accepted since the last start bound the backlog, so a
  // kill loses at most a window's worth of queued messages (the local queue keeps them in memory).
  const poller = (async () => {
    let lastPrint = 0;
    while (!stopProducing) {
      try {
        await up;
        outstanding = await nonTerminal(true);
        if (Date.now() - lastPrint > 30_000) {
          lastPrint = Date.now();
          console.log(`  ${Math.round((Date.now() - started) / 1000)} s: ${accepted.size} accepted, ${outstanding} outstanding, ${dev.kills} kills`);
        }
      } catch {
        // the runtime is restarting
      }
      await sleep(1_000);
    }
  })();

  let cursor = 0;
  const next = () => (cursor < planned.length && Date.now() < DEADLINE ? planned[cursor++] : undefined);
  const thresholds = Array.from({ length: KILLS }, (_, i) => Math.floor((N * (i + 1)) / (KILLS + 1)));
  const killer = (async () => {
    for (const t of thresholds) {
      while (accepted.size < t && !stopProducing && Date.now() < DEADLINE) await sleep(250);
      if (stopProducing || Date.now() >= DEADLINE) return;
      await killAndRestart();
    }
  })();
  await Promise.all(Array.from({ length: CONCURRENCY }, () => producer(next)));
  await killer;
  await Promise.allSettled(pending);
  const producedAt = Date.now();
  console.log(`  all ${accepted.size} accepted after ${Math.round((producedAt - started) / 1000)} s; waiting for every run to be terminal`);

  // Convergence: bounded by the global deadline.
  let left = -1;
  while (Date.now() < DEADLINE) {
    try {
      left = await nonTerminal(false);
    } catch {
      left = -1;
    }
    if (left === 0) break;
    await sleep(5_000);
  }
  stopProducing = true;
  await poller;
  cron.stop();
  const convergedAt = Date.now();
  await dev.stop();

  // --- Verification, from D1 with the runtime stopped. ---
  const rows = (await d1Execute(dev.persistTo, VERIFY_SQL, SOAK_CONFIG)) as unknown as RunRow[];
  const trails = new Map<string, TrailEvent[]>();
  for (const e of (await d1Execute(dev.persistTo, EVENTS_SQL, SOAK_CONFIG)) as unknown as EventRow[]) {
    let trail = trails.get(e.r);
    if (!trail) trails.set(e.r, (trail = []));
    trail.push({ action: e.a, at: Number(e.t), lateOutcome: e.o });
  }
  const behaviourOf = new Map<string, Behaviour>();
  for (const p of planned) {
    const id = accepted.get(p.index);
    if (id) behaviourOf.set(id, p.behaviour);
  }
  // Each attempt of a dying behaviour crashed its consumer invocation, and the attempts beside it.
  const crashes = [...behaviourOf].filter(([, b]) => DIES.has(b)).flatMap(([id]) =>
    (trails.get(id) ?? []).filter((e) => e.action === "run.attempt_started").map((e) => e.at),
  );
  const evidence = { kills, crashes, d1FaultRuns };
  const contradicted: Record<Contradiction, number> = {
    stale_queued_while_dispatch_held: 0,
    late_success_after_failure: 0,
    loss_without_fault: 0,
    failure_without_fault: 0,
  };
  let contradictedRuns = 0;
  const byKey = new Map(rows.map((r) => [r.k, r]));
  const byBehaviour: Record<string, Record<string, number>> = {};
  let lost = 0;
  let notTerminal = 0;
  let terminalEventsWrong = 0;
  let queuedEventsWrong = 0;
  let reconciledWithoutEvidence = 0;
  let unexpected = 0;
  let failedWithoutMessage = 0;
  const examples: Record<string, string[]> = {};
  const note = (kind: string, id: string) => {
    (examples[kind] ??= []).length < 5 && examples[kind]!.push(id);
  };
  for (const p of planned) {
    const id = accepted.get(p.index);
    if (!id) continue;
    const r = byKey.get(`soak-${p.index}`);
    if (!r || r.id !== id) {
      lost++;
      note("lost", id);
      continue;
    }
    const end = r.status !== "completed" ? `${r.status} (not terminal)` : r.rb ? `${r.outcome} ${r.reason} (${r.rb})` : `${r.outcome}${r.reason ? ` ${r.reason}` : ""}`;
    const b = (byBehaviour[p.behaviour] ??= {});
    b[end] = (b[end] ?? 0) + 1;
    if (p.duplicate !== "none") {
      const d = (byBehaviour[`(duplicate ${p.duplicate})`] ??= {});
      d[end] = (d[end] ?? 0) + 1;
    }
    if (r.status !== "completed") {
      notTerminal++;
      note("not terminal", r.id);
    }
    if (r.terminal_events !== 1) {
      terminalEventsWrong++;
      note(`${r.terminal_events} terminal events`, r.id);
    }
    if (r.queued_events !== 1) {
      queuedEventsWrong++;
      note(`${r.queued_events} run.queued events`, r.id);
    }
    if (r.rb && (r.evidence_type !== "object" || r.detected_by !== r.rb || r.reconciled_with_evidence !== 1)) {
      reconciledWithoutEvidence++;
      note("reconciled without evidence", r.id);
    }
    if (r.outcome === "failed" && !r.has_message) {
      failedWithoutMessage++;
      note("failed without message", r.id);
    }
    const wrong = contradictions(
      {
        id: r.id,
        neverDies: !DIES.has(p.behaviour),
        succeeds: SUCCEEDS.has(p.behaviour),
        verdict: { status: r.status, outcome: r.outcome, reasonCode: r.reason },
        trail: trails.get(r.id) ?? [],
      },
      evidence,
    );
    if (wrong.length > 0) {
      contradictedRuns++;
      for (const c of wrong) {
        contradicted[c]++;
        note(`contradicted: ${c} (${p.behaviour})`, r.id);
      }
    }
    const execution = r.reason ? `${r.outcome} ${r.reason}` : r.outcome;
    // A run ended by its handler or its own timeout must end as its behaviour says; a
    // lifecycle reconciliation is the machinery's answer to a fault and is counted above.
    const byMachinery = r.rb !== null;
    if (r.status === "completed" && !byMachinery && !EXPECTED[p.behaviour].includes(execution)) {
      unexpected++;
      note(`unexpected ${p.behaviour} → ${execution}`, r.id);
    }
  }
  const extra = rows.filter((r) => !r.k || !r.k.startsWith("soak-") || !accepted.has(Number(r.k.slice(5)))).length;
  const sum = (f: (r: RunRow) => number) => rows.reduce((a, r) => a + f(r), 0);
  const reconciledBy: Record<string, number> = {};
  for (const r of rows) if (r.rb) reconciledBy[`${r.reason} (${r.rb})`] = (reconciledBy[`${r.reason} (${r.rb})`] ?? 0) + 1;

  const checks = {
    [`all ${N.toLocaleString("en-US")} planned runs accepted (${accepted.size})${N < 10_000 ? " — fewer than the 10,000 of a full soak" : ""}`]:
      accepted.size === N,
    [`${KILLS} SIGKILLs, each while attempts ran (${kills.length}, attempts running: ${kills.map((k) => k.running).join(", ") || "-"})`]:
      kills.length === KILLS && kills.every((k) => k.running > 0),
    [`none lost (${lost}), no unaccounted runs (${extra})`]: lost === 0 && extra === 0,
    [`every run terminal (${notTerminal} not)`]: notTerminal === 0,
    [`exactly one terminal audit event per run (${terminalEventsWrong} runs otherwise)`]: terminalEventsWrong === 0,
    [`exactly one run.queued per run (${queuedEventsWrong} runs otherwise)`]: queuedEventsWrong === 0,
    [`every reconciled run with evidence (${reconciledWithoutEvidence} without)`]: reconciledWithoutEvidence === 0,
    [`every failed run with an operator message (${failedWithoutMessage} without)`]: failedWithoutMessage === 0,
    [`execution outcomes as the behaviour says (${unexpected} unexpected)`]: unexpected === 0,
    [`verdicts contradicted by evidence (${contradictedRuns}${contradictedRuns > 0 ? `: ${Object.entries(contradicted).filter(([, n]) => n > 0).map(([c, n]) => `${n} ${c}`).join(", ")}` : ""})`]:
      contradictedRuns === 0,
  };
  for (const [name, ok] of Object.entries(checks)) if (!ok) failures.push(name);

  report = {
    invocation,
    machine,
    source,
    startedAt: new Date(started).toISOString(),
    durations: {
      producingMs: producedAt - started,
      convergingMs: convergedAt - producedAt,
      totalMs: Date.now() - started,
    },
    runs: { planned: N, accepted: accepted.size, inD1: rows.length },
    kills,
    counts: {
      ...counts,
      reconciled: reconciledBy,
      // Reconciled as "never started" although an attempt had run (a lost retry or redelivery).
      staleQueuedAfterAnAttempt: rows.filter((r) => r.reason === "lifecycle.stale_queued" && r.attempt >= 1).length,
      attemptsStarted: sum((r) => r.started_events),
      attemptsLost: sum((r) => r.lost),
      lateResultsDiscarded: sum((r) => r.late),
      d1FaultsInjected: { ...d1Faults, rate: D1_FAULT_RATE, runsNamed: d1FaultRuns.size },
      verdictsContradictedByEvidence: { runs: contradictedRuns, ...contradicted },
      crashes: crashes.length,
    },
    contradictionRules: CONTRADICTIONS,
    logs: logCounts,
    outcomesByBehaviour: byBehaviour,
    checks,
    examples,
  };
} catch (e) {
  failures.push(`soak aborted: ${e instanceof Error ? e.message : String(e)}`);
} finally {
  stopProducing = true;
  cron?.stop();
  await dev.stop();
  mkdirSync(LOG_DIR, { recursive: true });
  try {
    copyFileSync(dev.logFile, join(LOG_DIR, "soak.log"));
  } catch {
    // no log written
  }
  rmSync(dir, { recursive: true, force: true });
}

const r = report as { checks?: Record<string, boolean>; outcomesByBehaviour?: Record<string, Record<string, number>>; counts?: unknown; kills?: unknown; durations?: unknown; logs?: unknown };
if (r.outcomesByBehaviour) {
  console.log("\noutcomes by behaviour:");
  for (const [b, ends] of Object.entries(r.outcomesByBehaviour)) {
    console.log(`  ${b.padEnd(16)} ${Object.entries(ends).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${v} ${k}`).join(", ")}`);
  }
  console.log(`\ncounts: ${JSON.stringify(r.counts)}`);
  console.log(`kills: ${JSON.stringify(r.kills)}`);
  console.log(`worker log lines: ${JSON.stringify(r.logs)}`);
  console.log(`durations: ${JSON.stringify(r.durations)}`);
  console.log("\nchecks:");
  for (const [name, ok] of Object.entries(r.checks ?? {})) console.log(`  ${ok ? "ok  " : "FAIL"} ${name}`);
}
const path = writeResults("soak", { ...report, failures });
console.log(`\ncommand: ${invocation}; took ${Math.round((Date.now() - started) / 1000)} s; wrote ${path}`);
if (failures.length > 0) {
  console.error(`\nsoak FAILED:\n- ${failures.join("\n- ")}`);
  process.exitCode = 1;
}
