// D1 as the run service writes it (mirrors RunService), for the dispatch
// model's world (dispatch-world.ts): every transition goes through decide(),
// fenced as the service fences it, and each step's one-shot fault or an
// outage hits the first write it reaches.
import {
  DEFAULT_SETTINGS,
  decide,
  storedDeadline,
  type Detector,
  type ExecutionReasonCode,
  type LifecycleEvent,
  type RunState,
} from "../../src/lifecycle";
import type { Report, World } from "./dispatch-world";

const { heartbeatFlushIntervalMs } = DEFAULT_SETTINGS;

/** A one-shot D1 fault for the next write of a step: refused before commit, or committed with its answer lost. */
export type Fault = "none" | "fail" | "lost";
export class D1Down extends Error {}

/**
 * Where the Durable Object catches an infrastructure error, the world catches
 * only D1's: a failed invariant thrown from inside a write must not be taken
 * for an outage and retried away.
 */
export function onlyD1Down(error: unknown): void {
  if (!(error instanceof D1Down)) throw error;
}

/** The run's D1 row, as far as the lifecycle reads it. */
export interface D1Run {
  state: RunState;
  deadlineAt: number | null;
  lastHeartbeatAt: number | null;
  completedAt: number | null;
  lastError: { attempt: number; reason: ExecutionReasonCode } | null;
}

export type RunAnswer = { ok: true; run: D1Run } | { ok: false; refusal: string; run: D1Run | null };

const snapshot = (r: D1Run): D1Run => ({ ...r, state: { ...r.state } });

// --- D1 (mirrors RunService) ------------------------------------------------

/** Every D1 write goes through here: the step's one-shot fault hits the first write of the step. */
export function d1Write<T>(w: World, write: () => T): T {
  const fault = w.fault;
  w.fault = "none";
  if (w.now < w.outageUntil) {
    w.tally("fault:outage");
    throw new D1Down("D1 is down");
  }
  if (fault === "fail") {
    w.tally("fault:fail");
    throw new D1Down("D1 refused the write");
  }
  const answer = write();
  if (fault === "lost") {
    w.tally("fault:lost");
    throw new D1Down("D1 committed; the answer was lost");
  }
  return answer;
}

export interface ApplyOptions {
  actor: "consumer" | "tracker" | Detector;
  /** RunService.reconcile: fenced on the deadline the detector read. */
  expectDeadlineAt?: number | null;
  /** The same report already applied (an earlier write committed, its answer lost). */
  sameAsApplied?: (run: D1Run) => boolean;
  /** The dispatch a claim or a dead letter came from (for the evidence). */
  dispatch?: number;
}

/** RunService.apply: read, decide, compare-and-set; a refusal changes nothing. */
export function d1Apply(w: World, event: LifecycleEvent, o: ApplyOptions): RunAnswer {
  return d1Write(w, (): RunAnswer => {
    const run = w.d1;
    if (o.expectDeadlineAt !== undefined && run.state.status !== "completed" && run.deadlineAt !== o.expectDeadlineAt) {
      w.tally(`fenced_deadline:${o.actor}`);
      if (o.actor === "sweep") w.tally("sweep:lost_race");
      return { ok: false, refusal: "fenced", run: snapshot(run) };
    }
    const d = decide(run.state, event);
    if (!d.ok) {
      if (o.sameAsApplied?.(run)) return { ok: false, refusal: "duplicate", run: snapshot(run) };
      w.tally(d.action === "run.late_result_discarded" ? "late_result_discarded" : `refused:${d.refusal}:${event.type}`);
      if (o.actor === "sweep") w.tally("sweep:lost_race");
      return { ok: false, refusal: d.refusal, run: snapshot(run) };
    }
    w.onTransition(w, event, d.from, d.to, o);
    const p = w.policy;
    const now = w.now;
    const next: D1Run = { ...run, state: d.to };
    switch (event.type) {
      case "claim":
        next.lastHeartbeatAt = now;
        next.deadlineAt = storedDeadline({ status: "running", queuedSince: now, lastFlushedHeartbeatAt: now }, p);
        break;
      case "attempt_failure":
        next.lastError = { attempt: event.attempt, reason: event.reason };
        break;
    }
    let dueSince: number | null = null;
    if (d.to.status === "queued") {
      // attempt_failed: due after the retry delay; attempt_lost: due at once.
      dueSince = event.type === "attempt_failure" ? now + p.retryDelaySeconds * 1000 : now;
      next.deadlineAt = storedDeadline({ status: "queued", queuedSince: dueSince, lastFlushedHeartbeatAt: null }, p);
    }
    if (d.to.status === "completed") {
      next.deadlineAt = null;
      next.completedAt = now;
    }
    w.d1 = next;
    // The world's bookkeeping (evidence), from what happened, not from the tracker.
    w.leaseHolder = d.to.status === "running" ? d.to.attempt : null;
    w.period = dueSince === null ? null : { since: dueSince, sends: 0, sent: new Set(), firstSentAt: null, delivered: false, alarmLate: w.alarmOverdue };
    if (d.to.status === "completed") {
      w.terminal = { ...d.to };
      w.terminalTransitions++;
    }
    w.tally(`ok:${event.type}:${o.actor}${d.to.status === "completed" ? ":terminal" : ""}`);
    if (d.takeover) w.tally("takeover");
    return { ok: true, run: snapshot(next) };
  });
}

/** RunService.heartbeat: the throttled (or forced) UPDATE; otherwise decide says why not. */
export function d1Heartbeat(w: World, attempt: number, at: number, force: boolean): { ok: true; flushed: boolean } | { ok: false; run: D1Run } {
  return d1Write(w, () => {
    const r = w.d1;
    const flushAfter = force ? at - 1 : at - heartbeatFlushIntervalMs;
    if (r.state.status === "running" && r.state.attempt === attempt && (r.lastHeartbeatAt === null || r.lastHeartbeatAt <= flushAfter)) {
      w.d1 = { ...r, lastHeartbeatAt: at, deadlineAt: storedDeadline({ status: "running", queuedSince: at, lastFlushedHeartbeatAt: at }, w.policy) };
      return { ok: true as const, flushed: true };
    }
    const d = decide(r.state, { type: "heartbeat", attempt });
    return d.ok ? { ok: true as const, flushed: false } : { ok: false as const, run: snapshot(r) };
  });
}

/** RunService.moveQueuedDeadline: only forward, only while queued at `attempt`. */
export function d1MoveQueuedDeadline(w: World, attempt: number, deadlineAt: number): boolean {
  return d1Write(w, () => {
    const r = w.d1;
    if (r.state.status !== "queued" || r.state.attempt !== attempt || r.deadlineAt === null || r.deadlineAt >= deadlineAt) return false;
    w.d1 = { ...r, deadlineAt };
    return true;
  });
}

/** RunTracker.applyReport → RunService.complete / failAttempt (with their "same report again" checks). */
export function d1ApplyReport(w: World, p: Report): RunAnswer {
  if (p.kind === "result") {
    return d1Apply(w, { type: "result", attempt: p.attempt, outcome: p.outcome }, {
      actor: "consumer",
      sameAsApplied: (r) => r.state.status === "completed" && r.state.attempt === p.attempt && r.state.reconciledBy === null && r.state.outcome === p.outcome,
    });
  }
  if (p.kind === "stopped") return d1Apply(w, { type: "cancel_stopped", attempt: p.attempt }, { actor: "consumer" });
  return d1Apply(w, { type: "attempt_failure", attempt: p.attempt, retryable: p.retryable, reason: p.reason }, {
    actor: "consumer",
    sameAsApplied: (r) =>
      r.state.attempt === p.attempt &&
      r.lastError?.attempt === p.attempt &&
      r.lastError.reason === p.reason &&
      (r.state.status === "queued" || (r.state.status === "completed" && r.state.reconciledBy === null)),
  });
}
