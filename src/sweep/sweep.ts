/**
 * The reconciliation sweep (contract v2 section 4.2): the backstop for runs
 * their tracker could not resolve — its alarm kept failing, the object was
 * never handed the run, a write was lost.
 *
 * It reads overdue live runs through the partial deadline index (rows read
 * grow with overdue runs, never with history), oldest first, by keyset, in
 * bounded batches within a time budget. For each, it asks the run's tracker
 * first: a tracker that vouches for the run (a live attempt by its own clock, a
 * dispatch in flight, a report being applied) is believed — its fresher
 * heartbeat is written to D1 where it has one — and the run is left alone. A
 * queued run no tracker holds is handed to one (adopted), not failed. Otherwise
 * the sweep resolves the run through the run service's compare-and-set, fenced
 * on the `deadline_at` it read: a deadline that moved meanwhile means a fresher
 * truth exists, and the sweep's write loses.
 *
 * Idempotent: a second sweep, or one racing the tracker's alarm or the
 * dead-letter bridge, loses the compare-and-set and writes nothing.
 */
import { DEFAULT_SETTINGS, type LifecycleSettings } from "../lifecycle";
import { policyFor } from "../operations";
import { meteredDb, overdueRuns, RunService, type D1Cost, type OverdueCursor, type RunRecord } from "../runs";
import { trackerFor, type TrackerStatus, type TrackAnswer, type TrackRequest } from "../tracker";
import { log } from "../log";

export interface SweepTracker {
  status(): Promise<TrackerStatus>;
  refresh(): Promise<{ refreshed: boolean }>;
  track(req: TrackRequest): Promise<TrackAnswer>;
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
  /** The tracker vouched for the run: believed and left alone (its refresh written where it had one). */
  vouched: number;
  /** Queued runs no tracker held, handed to one (dispatched) rather than failed. */
  adopted: number;
  /** Another path won (tracker alarm, dead-letter bridge, consumer): nothing written. */
  lostRace: number;
  trackerUnavailable: number;
  failed: number;
  batches: number;
  stoppedBy: "drained" | "budget";
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

/** The tracker vouches for the run: live by its own clock (contract section 4: a vouching tracker is believed). */
function trackerVouches(view: TrackerView): boolean {
  return view.kind === "answer" && view.status.known && view.status.vouches;
}

export async function runSweep(db: D1Database, env: Env, opts: SweepOptions): Promise<SweepReport> {
  const clock = opts.clock ?? Date.now;
  const settings = opts.settings ?? DEFAULT_SETTINGS;
  const started = clock();
  const metered = meteredDb(db);
  const service = new RunService(metered.db, { policyFor, settings, clock, webhooks: env.WEBHOOKS_QUEUE });
  const trackerOf = opts.tracker ?? ((runId: string) => trackerFor(env, runId));
  const report: SweepReport = {
    examined: 0,
    reconciled: {},
    refreshed: 0,
    vouched: 0,
    adopted: 0,
    lostRace: 0,
    trackerUnavailable: 0,
    failed: 0,
    batches: 0,
    stoppedBy: "drained",
    d1: metered.cost,
    durationMs: 0,
  };
  const handle = async (run: RunRecord): Promise<void> => {
    const now = clock();
    const tracker = trackerOf(run.id);
    const trackerTimeoutMs = opts.trackerTimeoutMs ?? 2_000;
    const view = await askTracker(tracker, trackerTimeoutMs);
    if (view.kind === "unavailable") report.trackerUnavailable++;
    if (trackerVouches(view)) {
      report.vouched++;
      // Believed whether or not the refresh lands: a refresh that fails or times out
      // leaves the run for the next sweep, never for a verdict against a live attempt.
      try {
        const { refreshed } = await withTimeout(tracker.refresh(), trackerTimeoutMs);
        if (refreshed) report.refreshed++;
      } catch (error) {
        log.warn("sweep.refresh_failed", { runId: run.id, error });
      }
      return;
    }
    if (view.kind === "answer" && !view.status.known && run.status === "queued") {
      // No tracker holds it (its hand-over at acceptance failed): adopt it, so it is
      // dispatched rather than failed for a dispatch that never happened.
      await withTimeout(
        tracker.track({ runId: run.id, workspaceId: run.workspaceId, type: run.type, maxAttempts: run.maxAttempts, attempt: run.attempt, dueAt: now, adopt: true }),
        trackerTimeoutMs,
      );
      report.adopted++;
      return;
    }
    const reason = run.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running";
    const answer = await service.reconcile(run.id, {
      detector: "sweep",
      reason,
      observed: { status: run.status === "queued" ? "queued" : "running", attempt: run.attempt, deadlineAt: run.deadlineAt },
      snapshot: run,
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
              ? `overdue by its own clock (${view.status.action.kind})`
              : "no state",
      },
    });
    if (answer.ok) report.reconciled[reason] = (report.reconciled[reason] ?? 0) + 1;
    else report.lostRace++;
  };

  const concurrency = Math.max(1, opts.concurrency ?? 8);
  let cursor: OverdueCursor | undefined;
  while (true) {
    if (clock() - started >= opts.budgetMs) {
      report.stoppedBy = "budget";
      break;
    }
    const now = clock();
    const { runs } = await overdueRuns(metered.db, now - settings.sweepGraceMs, opts.batchSize, cursor);
    report.batches++;
    if (runs.length === 0) {
      report.stoppedBy = "drained";
      break;
    }
    let outOfBudget = false;
    for (let i = 0; i < runs.length; i += concurrency) {
      if (clock() - started >= opts.budgetMs) {
        outOfBudget = true;
        break;
      }
      const slice = runs.slice(i, i + concurrency);
      const results = await Promise.allSettled(
        slice.map((run) => {
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
    const last = runs[runs.length - 1]!;
    cursor = { deadlineAt: last.deadlineAt ?? 0, id: last.id };
    if (runs.length < opts.batchSize) {
      report.stoppedBy = "drained";
      break;
    }
  }
  report.durationMs = clock() - started;
  return report;
}
