/**
 * The soak's "verdicts contradicted by evidence": a terminal verdict is wrong
 * when it names a cause that did not happen, fails a run whose attempt
 * succeeded, or fails a healthy run that no fault touched (lifecycle contract
 * v2, "Trustworthy"). The soak's other checks count states (terminal, one
 * event per transition); this one compares each verdict with what is known
 * independently of the system under test:
 * - the kills (SIGKILL of the runtime) and when the runtime was back: the only
 *   faults that can lose a locally queued dispatch or kill a healthy attempt;
 * - crashes: every attempt of a dying behaviour ends its consumer invocation,
 *   and every attempt running in that batch dies with it;
 * - the D1 faults the bench Worker injected, by the run ids they named;
 * - the run's own audit trail (times are the Worker's clock, the same host's).
 * Pure functions: the soak gathers the evidence, this judges it.
 */

export interface TrailEvent {
  action: string;
  /** epoch ms */
  at: number;
  /** For run.late_result_discarded: the outcome the fenced attempt reported. */
  lateOutcome: string | null;
}

export interface Verdict {
  status: string;
  outcome: string;
  reasonCode: string | null;
}

export interface Evidence {
  /** When each SIGKILL of the runtime happened, epoch ms. */
  kills: readonly { at: number }[];
  /** When each attempt of a dying behaviour started (its invocation crashed soon after), epoch ms. */
  crashes: readonly number[];
  /** Runs named by a statement the bench Worker failed on purpose. */
  d1FaultRuns: ReadonlySet<string>;
}

export interface RunFacts {
  id: string;
  /** The behaviour never dies by itself (only a kill or a crash beside it can end an attempt without a result). */
  neverDies: boolean;
  /** The behaviour ends succeeded or partially_succeeded when nothing interferes. */
  succeeds: boolean;
  verdict: Verdict;
  /** The run's audit events in order. */
  trail: readonly TrailEvent[];
}

export const CONTRADICTIONS = {
  stale_queued_while_dispatch_held: "lifecycle.stale_queued with no kill since its dispatch was last sent (it was in flight or held, not lost)",
  late_success_after_failure: "a late success (run.late_result_discarded, succeeded) after a failure verdict",
  loss_without_fault: "an attempt of a behaviour that never dies declared lost with no kill or crash during it",
  failure_without_fault: "a failure verdict for a behaviour that succeeds, with no kill, crash or D1 fault that explains it",
} as const;
export type Contradiction = keyof typeof CONTRADICTIONS;

/** A crash kills the attempts of its batch: the batch's attempts start together, within this of each other. */
const SAME_BATCH_MS = 5_000;

/** Events after which the run waits for a dispatch the tracker has just sent (or re-sent). */
const SENDS = new Set(["run.queued", "run.attempt_failed", "run.attempt_lost", "run.redispatched"]);

const killedDuring = (e: Evidence, from: number, to: number) => e.kills.some((k) => k.at >= from && k.at <= to);
const crashedDuring = (e: Evidence, from: number, to: number) => e.crashes.some((c) => c >= from - SAME_BATCH_MS && c <= to);

const ENDS = new Set(["run.attempt_lost", "run.attempt_failed", "run.completed", "run.failed", "run.reconciled", "run.cancelled"]);

/** Each attempt as [started, ended] and whether it ended lost (run.attempt_lost, or the last one reconciled as lost). */
function attempts(run: RunFacts): { from: number; to: number; lost: boolean }[] {
  const out: { from: number; to: number; lost: boolean }[] = [];
  let started: number | null = null;
  for (const e of run.trail) {
    if (e.action === "run.attempt_started") started = e.at;
    else if (ENDS.has(e.action) && started !== null) {
      const lost =
        e.action === "run.attempt_lost" ||
        (e.action === "run.reconciled" && (run.verdict.reasonCode === "lifecycle.heartbeat_lost" || run.verdict.reasonCode === "lifecycle.stale_running"));
      out.push({ from: started, to: e.at, lost });
      started = null;
    }
  }
  return out;
}

/** What contradicts this run's verdict (empty: the evidence supports it, or it is not terminal yet). */
export function contradictions(run: RunFacts, evidence: Evidence): Contradiction[] {
  const found: Contradiction[] = [];
  if (run.verdict.status !== "completed") return found;
  const terminalAt = run.trail.find((e) => ["run.completed", "run.failed", "run.reconciled", "run.cancelled"].includes(e.action))?.at ?? Infinity;
  const createdAt = run.trail[0]?.at ?? 0;

  if (run.verdict.reasonCode === "lifecycle.stale_queued") {
    const lastSent = Math.max(createdAt, ...run.trail.filter((e) => SENDS.has(e.action) && e.at <= terminalAt).map((e) => e.at));
    if (!killedDuring(evidence, lastSent, terminalAt)) found.push("stale_queued_while_dispatch_held");
  }

  if (run.verdict.outcome === "failed" && run.trail.some((e) => e.action === "run.late_result_discarded" && e.at >= terminalAt && (e.lateOutcome === "succeeded" || e.lateOutcome === "partially_succeeded"))) {
    found.push("late_success_after_failure");
  }

  const ran = attempts(run);
  if (run.neverDies && ran.some((a) => a.lost && !killedDuring(evidence, a.from, a.to) && !crashedDuring(evidence, a.from, a.to))) {
    found.push("loss_without_fault");
  }

  if (run.succeeds && run.verdict.outcome === "failed") {
    const touched =
      killedDuring(evidence, createdAt, terminalAt) ||
      ran.some((a) => crashedDuring(evidence, a.from, a.to)) ||
      evidence.d1FaultRuns.has(run.id);
    if (!touched) found.push("failure_without_fault");
  }
  return found;
}
