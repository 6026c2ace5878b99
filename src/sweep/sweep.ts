/**
 * The reconciliation sweep (contract section 4.2): the backstop for runs
 * their tracker could not resolve — its alarm kept failing, the object was
 * never created, a write was lost.
 *
 * It reads overdue live runs through the partial deadline index (rows read
 * grow with overdue runs, never with history), oldest first, in bounded
 * batches within a time budget. For each, it asks the run's tracker first:
 * a tracker with a fresher heartbeat refreshes D1 and the run is left alone;
 * otherwise (tracker also overdue, empty, or unreachable) the sweep resolves
 * the run through the run service's compare-and-set.
 *
 * Idempotent: a second sweep, or one racing the tracker's alarm or the
 * dead-letter bridge, loses the compare-and-set and writes nothing.
 */
import { DEFAULT_SETTINGS, type LifecycleSettings } from "../lifecycle";
import { policyFor } from "../operations";
import { meteredDb, overdueRuns, RunService, type D1Cost, type RunRecord } from "../runs";
import { trackerFor, type TrackerStatus } from "../tracker";
import { log } from "../log";

export interface SweepTracker {
  status(): Promise<TrackerStatus>;
  refresh(): Promise<{ refreshed: boolean }>;
}

export interface SweepOptions {
  batchSize: number;
  budgetMs: number;
  settings?: LifecycleSettings;
  /** How long to wait for a tracker before treating it as unable to act. */
  trackerTimeoutMs?: number;
  /** Runs handled at once within a batch. */
  concurrency?: number;
  clock?: () => number;
  tracker?: (runId: string) => SweepTracker;
}

export interface SweepReport {
  examined: number;
  reconciled: Record<string, number>;
  refreshed: number;
  /** Another path won (tracker alarm, dead-letter bridge, consumer): nothing written. */
  lostRace: number;
  trackerUnavailable: number;
  failed: number;
  batches: number;
  stoppedBy: "drained" | "budget" | "no_progress";
  d1: D1Cost;
  durationMs: number;
}

type TrackerView = { kind: "answer"; status: TrackerStatus } | { kind: "unavailable"; error: string };

/** A tracker call bounded by the tracker timeout: a hung Durable Object must not stall the sweep past its budget. */
async function withTimeout<T>(call: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      call,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

async function askTracker(t: SweepTracker, timeoutMs: number): Promise<TrackerView> {
  try {
    return { kind: "answer", status: await withTimeout(t.status(), timeoutMs) };
  } catch (error) {
    return { kind: "unavailable", error: error instanceof Error ? error.message : "unknown error" };
  }
}

/** The tracker vouches for the run: it is live in the same attempt and not overdue by its own clock. */
function trackerVouches(view: TrackerView, run: RunRecord): boolean {
  if (view.kind !== "answer" || !view.status.known) return false;
  const { state, action } = view.status;
  return action.kind === "wait" && state.status === run.status && state.attempt === run.attempt && state.status !== "completed";
}

export async function runSweep(db: D1Database, env: Env, opts: SweepOptions): Promise<SweepReport> {
  const clock = opts.clock ?? Date.now;
  const settings = opts.settings ?? DEFAULT_SETTINGS;
  const started = clock();
  const metered = meteredDb(db);
  const service = new RunService(metered.db, { policyFor, settings, clock });
  const trackerOf = opts.tracker ?? ((runId: string) => trackerFor(env, runId));
  const report: SweepReport = {
    examined: 0,
    reconciled: {},
    refreshed: 0,
    lostRace: 0,
    trackerUnavailable: 0,
    failed: 0,
    batches: 0,
    stoppedBy: "drained",
    d1: metered.cost,
    durationMs: 0,
  };
  const seen = new Set<string>();

  const handle = async (run: RunRecord): Promise<void> => {
    const now = clock();
    const tracker = trackerOf(run.id);
    const trackerTimeoutMs = opts.trackerTimeoutMs ?? 2_000;
    const view = await askTracker(tracker, trackerTimeoutMs);
    if (view.kind === "unavailable") report.trackerUnavailable++;
    if (trackerVouches(view, run)) {
      // A tracker that vouched but cannot refresh fails this run (left for the
      // next sweep) rather than letting the sweep kill an attempt it says is alive.
      const { refreshed } = await withTimeout(tracker.refresh(), trackerTimeoutMs);
      if (refreshed) {
        report.refreshed++;
        return;
      }
    }
    const reason = run.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running";
    const answer = await service.reconcile(run.id, {
      detector: "sweep",
      reason,
      observed: { status: run.status === "queued" ? "queued" : "running", attempt: run.attempt },
      evidence: {
        detectedAt: now,
        deadlineAt: run.deadlineAt,
        overdueByMs: run.deadlineAt === null ? null : now - run.deadlineAt,
        lastHeartbeatAt: run.lastHeartbeatAt,
        attempt: run.attempt,
        maxAttempts: run.maxAttempts,
        tracker:
          view.kind === "unavailable"
            ? `unavailable: ${view.error}`
            : view.status.known
              ? `overdue (${view.status.action.kind})`
              : "no state",
      },
    });
    if (answer.ok) report.reconciled[reason] = (report.reconciled[reason] ?? 0) + 1;
    else report.lostRace++;
  };

  const concurrency = Math.max(1, opts.concurrency ?? 8);
  while (true) {
    if (clock() - started >= opts.budgetMs) {
      report.stoppedBy = "budget";
      break;
    }
    const now = clock();
    const { runs } = await overdueRuns(metered.db, now - settings.sweepGraceMs, opts.batchSize);
    report.batches++;
    const fresh = runs.filter((r) => !seen.has(r.id));
    if (fresh.length === 0) {
      report.stoppedBy = runs.length === 0 ? "drained" : "no_progress";
      break;
    }
    let outOfBudget = false;
    for (let i = 0; i < fresh.length; i += concurrency) {
      if (clock() - started >= opts.budgetMs) {
        outOfBudget = true;
        break;
      }
      const slice = fresh.slice(i, i + concurrency);
      const results = await Promise.allSettled(
        slice.map((run) => {
          seen.add(run.id);
          report.examined++;
          return handle(run);
        }),
      );
      // A failed run (e.g. a D1 write error) stays overdue and is retried by the next sweep.
      results.forEach((r, k) => {
        if (r.status === "rejected") {
          report.failed++;
          log.error("sweep.run_failed", { runId: slice[k]!.id, error: r.reason });
        }
      });
    }
    // Runs of this batch were left unexamined: the sweep ran out of time, it did not drain.
    if (outOfBudget) {
      report.stoppedBy = "budget";
      break;
    }
    if (runs.length < opts.batchSize) {
      report.stoppedBy = "drained";
      break;
    }
  }
  report.durationMs = clock() - started;
  return report;
}
