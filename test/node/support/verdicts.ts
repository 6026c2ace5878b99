/**
 * Reading a run's audit trail as evidence (contract v2 sections 2 and 4), and
 * checking that its verdict is the one the evidence supports.
 */
import { expect } from "vitest";
import type { ApiRun, AuditRow } from "./local-runtime";

/** The audit actions that end a run: exactly one per run, under any race (contract section 2). */
export const TERMINAL_ACTIONS = ["run.completed", "run.failed", "run.reconciled", "run.cancelled"] as const;

/**
 * The run's transitions in order, without the events that are not transitions
 * of its attempts: `run.redispatched` (the tracker re-sending a dispatch nobody
 * claimed yet, which a held batch or a restart legitimately causes) and
 * `run.late_result_discarded` (a fenced attempt's report, recorded only).
 */
export function transitions(trail: readonly AuditRow[]): string[] {
  return trail.map((e) => e.action).filter((a) => a !== "run.redispatched" && a !== "run.late_result_discarded");
}

export function count(trail: readonly AuditRow[], action: string): number {
  return trail.filter((e) => e.action === action).length;
}

/** The id of the `nth` event named `action`: ids are time-ordered, so comparing them orders events across runs. */
export function eventId(trail: readonly AuditRow[], action: string, nth = 1): string {
  const hits = trail.filter((e) => e.action === action);
  const hit = hits[nth - 1];
  if (!hit) throw new Error(`no ${action} #${nth} in ${trail[0]?.runId ?? "an empty trail"}: ${trail.map((e) => e.action).join(", ")}`);
  return hit.id;
}

/** What a behaviour ends as when nothing outside it interferes. */
export interface Expected {
  outcome: "succeeded" | "partially_succeeded" | "failed";
  reasonCode: string | null;
}

/**
 * The verdict is one the evidence supports, for a behaviour that never dies on
 * its own and whose attempts can only have been killed by `crashes` faults
 * (crashed batches, runtime kills) that happened while it ran:
 * - one terminal event, the last transition, and never `lifecycle.stale_queued`;
 * - `attempt` is the number of attempts started, each earlier one ended by a
 *   retryable failure or a loss, and no more losses than there were crashes;
 * - the behaviour's own verdict, unless its last attempt was lost to a crash
 *   with none left (then, and only then, `lifecycle.heartbeat_lost`).
 */
export function expectVerdictFromEvidence(run: ApiRun, trail: readonly AuditRow[], expected: Expected, crashes: number): void {
  const steps = transitions(trail);
  const where = `${run.id}: ${steps.join(" → ")}`;
  expect(run.status, where).toBe("completed");
  expect(run.reasonCode, where).not.toBe("lifecycle.stale_queued");
  expect(TERMINAL_ACTIONS.reduce((n, a) => n + count(trail, a), 0), where).toBe(1);
  expect(TERMINAL_ACTIONS as readonly string[], where).toContain(steps.at(-1));
  expect(steps[0], where).toBe("run.queued");
  // queued, then (started, failed|lost)*, started, terminal — or a lost last attempt reconciled.
  const attempts = steps.slice(1, -1);
  const started = count(trail, "run.attempt_started");
  expect(run.attempt, where).toBe(started);
  for (let i = 0; i < attempts.length; i += 2) {
    expect(attempts[i], where).toBe("run.attempt_started");
    if (i + 1 < attempts.length) expect(["run.attempt_failed", "run.attempt_lost"], where).toContain(attempts[i + 1]);
  }
  const lost = count(trail, "run.attempt_lost");
  if (run.reasonCode === "lifecycle.heartbeat_lost") {
    // The last attempt was lost too, with none left: true only if a crash explains each loss.
    expect(run.reconciledBy, where).toBe("tracker_alarm");
    expect(run.attempt, where).toBe(run.maxAttempts);
    expect(lost + 1, where).toBeLessThanOrEqual(crashes);
    return;
  }
  expect(lost, where).toBeLessThanOrEqual(crashes);
  expect({ outcome: run.outcome, reasonCode: run.reasonCode, reconciledBy: run.reconciledBy }, where).toEqual({
    outcome: expected.outcome,
    reasonCode: expected.reasonCode,
    reconciledBy: null,
  });
}
