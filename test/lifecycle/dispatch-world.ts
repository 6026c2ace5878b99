// The world of the dispatch model's property test
// (transitions.property.test.ts): a D1 row, the tracker's real `TrackerState`,
// a clock, queue messages in flight and live attempts, run around the PURE
// functions the Durable Object, the run service and the sweep compose —
// decide, alarmAction, vouches, nextDispatch, storedDeadline. Each helper
// mirrors one method (named in its comment), with the same order of checks,
// so a reader can hold the two side by side. The world records the evidence
// (what really happened: an attempt's real last heartbeat, what the queue was
// given, what was delivered) for the test's invariants; it checks nothing
// itself but hands every D1 transition to `onTransition` before it is written.
import {
  DEFAULT_SETTINGS,
  decide,
  initialState,
  storedDeadline,
  type Detector,
  type ExecutionReasonCode,
  type FinalOutcome,
  type LifecycleEvent,
  type LifecyclePolicy,
  type RunState,
} from "../../src/lifecycle";
import {
  alarmAction,
  backoffMs,
  nextAlarmAt,
  nextDispatch,
  staleQueuedAt,
  vouches,
  withError,
  type PendingReport,
  type TrackerState,
} from "../../src/tracker/state";
import type { AttemptReport } from "../../src/tracker/protocol";

/**
 * A plain assertion: cheap enough for millions of checks (expect() is not), and
 * fast-check shrinks on it. The message is built only on failure (it prints the world).
 */
export function assert(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}

// ---------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------

/** The sweep runs on a cron every minute (wrangler.toml's crons). */
export const SWEEP_EVERY_MS = 60_000;
export const { heartbeatFlushIntervalMs, sweepGraceMs } = DEFAULT_SETTINGS;

/** A one-shot D1 fault for the next write of a step: refused before commit, or committed with its answer lost. */
export type Fault = "none" | "fail" | "lost";
export class D1Down extends Error {}

/**
 * Where the Durable Object catches an infrastructure error, the world catches
 * only D1's: a failed invariant thrown from inside a write must not be taken
 * for an outage and retried away.
 */
function onlyD1Down(error: unknown): void {
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

type RunAnswer = { ok: true; run: D1Run } | { ok: false; refusal: string; run: D1Run | null };

/** A queue message: a copy of a dispatch number, deliverable once its delay has passed. */
export interface Copy {
  n: number;
  visibleAt: number;
}

/** An attempt as it really is (the evidence), not as the tracker believes it. */
export interface Attempt {
  n: number;
  dispatch: number;
  /** Its consumer is running it (false once it reported, crashed, was fenced, or never got its ticket). */
  alive: boolean;
  /** Its real last sign of life: the start, or the last heartbeat it sent. */
  lastBeatAt: number;
  /** The tracker stored its report as the lease holder's. */
  reportHeld: boolean;
  reported: boolean;
}

/** A queued stretch of the run in D1: when it became due and what the queue was given meanwhile. */
export interface Period {
  since: number;
  sends: number;
  /** Dispatch numbers sent while the run was queued at this stretch. */
  sent: Set<number>;
  /** When the queue first got one (null: not yet). */
  firstSentAt: number | null;
  /** A copy of a dispatch sent in this stretch was presented to the tracker while D1 worked. */
  delivered: boolean;
  /** The tracker's alarm was held past its time during this stretch (a platform delay). */
  alarmLate: boolean;
}

/** What an attempt reports (as the consumer hands it over). */
export type Report = AttemptReport;

export interface World {
  policy: LifecyclePolicy;
  now: number;
  d1: D1Run;
  tracker: TrackerState | null;
  /** The one alarm the Durable Object has armed (null: none). */
  alarmAt: number | null;
  /** The armed alarm's time passed during a tick that held it. */
  alarmOverdue: boolean;
  queue: Copy[];
  /** The newest dispatch number the queue was given. */
  latestSent: number;
  attempts: Map<number, Attempt>;
  /** The attempt that holds the lease in D1 (running at it), by the world's own bookkeeping. */
  leaseHolder: number | null;
  period: Period | null;
  /** The lease holder's report the tracker stored before any verdict: the next transition must be it. */
  heldReport: Report | null;
  /** The first lease holder's result stored before any verdict: the run must end with it. */
  promisedOutcome: FinalOutcome | null;
  terminal: RunState | null;
  terminalTransitions: number;
  fault: Fault;
  /** D1 refuses every write until then (an outage; reads still work). */
  outageUntil: number;
  /** The settle phase runs: the sweep must never need to decide. */
  settling: boolean;
  slots: ({ status: "queued" | "running"; attempt: number; deadlineAt: number | null } | null)[];
  tally: (key: string) => void;
  /** Called with every transition D1 is about to write (the test's evidence checks). */
  onTransition: (w: World, event: LifecycleEvent, from: RunState, to: RunState, o: ApplyOptions) => void;
}

export function newWorld(policy: LifecyclePolicy, hooks: Pick<World, "tally" | "onTransition">): World {
  const now = 1_000_000;
  const w: World = {
    policy,
    now,
    d1: {
      state: initialState(policy.maxAttempts),
      deadlineAt: storedDeadline({ status: "queued", queuedSince: now, lastFlushedHeartbeatAt: null }, policy),
      lastHeartbeatAt: null,
      completedAt: null,
      lastError: null,
    },
    tracker: null,
    alarmAt: null,
    alarmOverdue: false,
    queue: [],
    latestSent: 0,
    attempts: new Map(),
    leaseHolder: null,
    period: { since: now, sends: 0, sent: new Set(), firstSentAt: null, delivered: false, alarmLate: false },
    heldReport: null,
    promisedOutcome: null,
    terminal: null,
    terminalTransitions: 0,
    fault: "none",
    outageUntil: 0,
    settling: false,
    slots: [null, null],
    ...hooks,
  };
  // Acceptance: the API inserted the run; the tracker takes it (RunTracker.track).
  track(w, { attempt: 0, dueAt: now, adopt: false });
  return w;
}

const snapshot = (r: D1Run): D1Run => ({ ...r, state: { ...r.state } });

// --- D1 (mirrors RunService) ------------------------------------------------

/** Every D1 write goes through here: the step's one-shot fault hits the first write of the step. */
function d1Write<T>(w: World, write: () => T): T {
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
function d1Apply(w: World, event: LifecycleEvent, o: ApplyOptions): RunAnswer {
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
function d1Heartbeat(w: World, attempt: number, at: number, force: boolean): { ok: true; flushed: boolean } | { ok: false; run: D1Run } {
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
function d1MoveQueuedDeadline(w: World, attempt: number, deadlineAt: number): boolean {
  return d1Write(w, () => {
    const r = w.d1;
    if (r.state.status !== "queued" || r.state.attempt !== attempt || r.deadlineAt === null || r.deadlineAt >= deadlineAt) return false;
    w.d1 = { ...r, deadlineAt };
    return true;
  });
}

/** RunTracker.applyReport → RunService.complete / failAttempt (with their "same report again" checks). */
function d1ApplyReport(w: World, p: Report): RunAnswer {
  if (p.kind === "result") {
    return d1Apply(w, { type: "result", attempt: p.attempt, outcome: p.outcome }, {
      actor: "consumer",
      sameAsApplied: (r) => r.state.status === "completed" && r.state.attempt === p.attempt && r.state.reconciledBy === null && r.state.outcome === p.outcome,
    });
  }
  return d1Apply(w, { type: "attempt_failure", attempt: p.attempt, retryable: p.retryable, reason: p.reason }, {
    actor: "consumer",
    sameAsApplied: (r) =>
      r.state.attempt === p.attempt &&
      r.lastError?.attempt === p.attempt &&
      r.lastError.reason === p.reason &&
      (r.state.status === "queued" || (r.state.status === "completed" && r.state.reconciledBy === null)),
  });
}

// --- The tracker (mirrors RunTracker) ----------------------------------------

/** RunTracker.save: persist and re-arm the one alarm at the state's next deadline. */
function save(w: World, s: TrackerState): void {
  w.tracker = s;
  w.alarmAt = nextAlarmAt(s, w.policy, w.now);
}

/** RunTracker.noteError. */
function noteError(w: World, s: TrackerState, where: string): TrackerState {
  return { ...s, errors: withError(s.errors, { at: w.now, where, message: "D1 down" }) };
}

/** RunTracker.flushErrors (best effort; no fault is aimed at it). */
function flushErrors(s: TrackerState): TrackerState {
  return s.errors.length === 0 || s.status === "completed" ? s : { ...s, errors: [] };
}

/** RunTracker.followed: mirror what D1 says, never backwards; a run D1 put back in the queue gets a new dispatch. */
function followed(w: World, s: TrackerState, run: D1Run): TrackerState {
  if (run.state.status === "completed") {
    return { ...s, status: "completed", attempt: Math.max(s.attempt, run.state.attempt), pending: null, completedAt: run.completedAt ?? w.now };
  }
  if (run.state.attempt < s.attempt) return s;
  if (run.state.status === "running") {
    if (s.status === "running" && run.state.attempt === s.attempt) return s;
    w.tally("tracker_adopted_running");
    return {
      ...s,
      status: "running",
      attempt: run.state.attempt,
      dispatch: { ...s.dispatch, claimed: true },
      lastHeartbeatAt: Math.max(s.lastHeartbeatAt ?? 0, run.lastHeartbeatAt ?? w.now),
      lastFlushedAt: run.lastHeartbeatAt,
    };
  }
  if (s.status === "queued" && run.state.attempt === s.attempt) return s;
  const dueAt = run.deadlineAt !== null ? run.deadlineAt - w.policy.staleQueuedAfterMs : w.now;
  return { ...s, status: "queued", attempt: run.state.attempt, dispatch: nextDispatch(s, dueAt), pending: null };
}

/** RunTracker.send: the current unclaimed dispatch reaches the queue, delayed until its due time. */
function send(w: World, s: TrackerState, resend: boolean): TrackerState {
  if (s.status !== "queued" || s.dispatch.claimed) return s;
  const delaySeconds = Math.min(43_200, Math.max(0, Math.ceil((s.dispatch.dueAt - w.now) / 1000)));
  w.queue.push({ n: s.dispatch.n, visibleAt: w.now + delaySeconds * 1000 });
  w.latestSent = Math.max(w.latestSent, s.dispatch.n);
  // Evidence: what the queue was given while the run waited in D1.
  if (w.period && w.d1.state.status === "queued" && w.d1.state.attempt === s.attempt) {
    w.period.sends++;
    w.period.sent.add(s.dispatch.n);
    w.period.firstSentAt ??= w.now;
  }
  w.tally(resend ? "resent" : "sent");
  return { ...s, dispatch: { ...s.dispatch, sends: s.dispatch.sends + 1, sentAt: w.now }, failures: 0, retryAt: null };
}

/** RunTracker.track: store dispatch 1 and send it; idempotent; `adopt` also moves D1's deadline. */
function track(w: World, req: { attempt: number; dueAt: number; adopt: boolean }): void {
  let s = w.tracker;
  if (!s) {
    s = {
      v: 2,
      runId: "run",
      workspaceId: "ws",
      type: "demo.work",
      status: "queued",
      attempt: req.attempt,
      maxAttempts: w.policy.maxAttempts,
      dispatch: { n: 1, dueAt: req.dueAt, claimed: false, sends: 0, sentAt: null },
      lastHeartbeatAt: null,
      lastFlushedAt: null,
      progress: null,
      pending: null,
      applied: null,
      errors: [],
      failures: 0,
      retryAt: null,
      completedAt: null,
    };
    save(w, s);
  }
  if (s.status === "queued" && !s.dispatch.claimed && s.dispatch.sends === 0) {
    s = send(w, s, false);
    save(w, s);
  }
  if (req.adopt) {
    try {
      d1MoveQueuedDeadline(w, s.attempt, staleQueuedAt(s, w.policy));
    } catch (error) {
      onlyD1Down(error);
      w.tracker = noteError(w, s, "adopt");
    }
  }
}

/** RunTracker.claim: only the current, unclaimed dispatch of a queued run starts attempt n+1, once. Throws when D1 fails. */
function claim(w: World, dispatch: number): { ok: true; attempt: number } | { ok: false; refusal: string } {
  let s = w.tracker;
  if (!s) return { ok: false, refusal: "not_found" };
  if (s.status === "completed") return { ok: false, refusal: "terminal" };
  if (dispatch !== s.dispatch.n) return { ok: false, refusal: "stale_dispatch" };
  if (s.dispatch.claimed || s.status !== "queued") return { ok: false, refusal: "duplicate" };
  if (s.attempt >= s.maxAttempts) return { ok: false, refusal: "exhausted" };
  const attempt = s.attempt + 1;
  let answer: RunAnswer;
  try {
    answer = d1Apply(w, { type: "claim", attempt }, { actor: "consumer", dispatch });
  } catch (error) {
    onlyD1Down(error);
    save(w, noteError(w, s, "claim"));
    throw error;
  }
  const run = answer.run;
  const ours = answer.ok || (run !== null && run.state.status === "running" && run.state.attempt === attempt && answer.refusal === "duplicate");
  if (!ours || !run) {
    if (run) save(w, followed(w, s, run));
    return { ok: false, refusal: answer.ok ? "duplicate" : answer.refusal };
  }
  if (!answer.ok) w.tally("claim_adopted_committed");
  s = { ...s, status: "running", attempt, dispatch: { ...s.dispatch, claimed: true }, lastHeartbeatAt: w.now, lastFlushedAt: run.lastHeartbeatAt };
  save(w, flushErrors(s));
  return { ok: true, attempt };
}

/** RunTracker.heartbeat: lands in storage every time, in D1 once per flush interval; no re-arm. */
function heartbeat(w: World, attempt: number): boolean {
  const s = w.tracker;
  if (!s || s.status === "completed" || s.status !== "running" || s.attempt !== attempt) return false;
  let next: TrackerState = { ...s, lastHeartbeatAt: w.now };
  const due = s.lastFlushedAt === null || w.now - s.lastFlushedAt >= heartbeatFlushIntervalMs;
  if (due && !s.pending) {
    try {
      const flushed = d1Heartbeat(w, attempt, w.now, false);
      if (!flushed.ok) {
        save(w, followed(w, next, flushed.run));
        return false;
      }
      if (flushed.flushed) next = { ...next, lastFlushedAt: w.now };
    } catch (error) {
      onlyD1Down(error);
      next = noteError(w, next, "heartbeat_flush");
    }
  }
  w.tracker = next;
  return true;
}

/** RunTracker.applyPending: apply the stored report; on failure keep it with a backoff for the alarm. */
function applyPending(w: World, s: TrackerState): TrackerState {
  const p = s.pending;
  if (!p) return s;
  s = flushErrors(s);
  let answer: RunAnswer;
  try {
    answer = d1ApplyReport(w, p);
  } catch (error) {
    onlyD1Down(error);
    const failed = noteError(w, s, "result_write");
    return { ...failed, failures: s.failures + 1, retryAt: w.now + backoffMs(s.failures + 1) };
  }
  const base: TrackerState = { ...s, pending: null, failures: 0, retryAt: null };
  if (!answer.run) return { ...base, status: "completed", completedAt: w.now };
  const applied = answer.ok || answer.refusal === "duplicate";
  if (!answer.ok && applied) w.tally("report_already_committed");
  let next = followed(w, base, answer.run);
  if (applied) next = { ...next, applied: { attempt: p.attempt, kind: p.kind } };
  if (next.status === "queued") next = send(w, next, false);
  return next;
}

/** RunTracker.report: stored before the answer, then applied; a late one goes to D1 to be recorded as discarded. */
function report(w: World, req: Report): void {
  const s = w.tracker;
  if (!s) return;
  const same = (p: { attempt: number; kind: string } | null) => p !== null && p.attempt === req.attempt && p.kind === req.kind;
  if (same(s.pending) || same(s.applied)) {
    w.tally("report_again_noop");
    return;
  }
  if (s.status !== "running" || s.attempt !== req.attempt) {
    try {
      const late = d1ApplyReport(w, req);
      if (late.run) save(w, followed(w, s, late.run));
    } catch (error) {
      onlyD1Down(error);
      // The consumer retries the call; the report is late either way.
    }
    return;
  }
  // Evidence: the lease holder handed its report over before any verdict.
  const attempt = w.attempts.get(req.attempt);
  if (attempt) attempt.reportHeld = true;
  if (w.terminal === null && w.leaseHolder === req.attempt) {
    w.heldReport = req;
    if (req.kind === "result" && w.promisedOutcome === null) w.promisedOutcome = req.outcome;
  }
  const pending: PendingReport = { ...req, storedAt: w.now };
  const held: TrackerState = { ...s, pending };
  save(w, held);
  save(w, applyPending(w, held));
}

/** RunTracker.settle (after the alarm's own D1 write). */
function settle(w: World, s: TrackerState, answer: RunAnswer): TrackerState | null {
  if (!answer.run) return null;
  const next = { ...followed(w, s, answer.run), failures: 0, retryAt: null };
  return next.status === "queued" ? send(w, next, false) : next;
}

/** RunTracker.act: one alarm step. */
function act(w: World, s: TrackerState): TrackerState | null {
  const action = alarmAction(s, w.policy, w.now);
  w.tally(`alarm:${action.kind}`);
  switch (action.kind) {
    case "wait":
      return s;
    case "cleanup":
      return null;
    case "apply_pending":
      return applyPending(w, s);
    case "send":
      return send(w, s, action.resend);
    case "heartbeat_lost":
      return settle(w, flushErrors(s), d1Apply(w, { type: "heartbeat_lost", attempt: s.attempt }, { actor: "tracker" }));
    case "stale_queued": {
      const event: LifecycleEvent = {
        type: "reconcile",
        detector: "tracker_alarm",
        reason: "lifecycle.stale_queued",
        observed: { status: "queued", attempt: s.attempt },
      };
      return settle(w, flushErrors(s), d1Apply(w, event, { actor: "tracker_alarm" }));
    }
  }
}

/** RunTracker.alarm: never throws; a failing action re-arms with backoff. */
export function alarm(w: World): void {
  w.alarmOverdue = false;
  const s = w.tracker;
  if (!s) return;
  try {
    const next = act(w, s);
    if (next === null) {
      w.tracker = null;
      w.alarmAt = null;
      return;
    }
    save(w, next);
  } catch (error) {
    onlyD1Down(error);
    const failures = s.failures + 1;
    save(w, { ...noteError(w, w.tracker ?? s, "alarm"), failures, retryAt: w.now + backoffMs(failures) });
  }
}

/** RunTracker.refresh: write what a vouching tracker knows so D1's deadline moves. */
function refresh(w: World): void {
  const s = w.tracker;
  if (!s || s.status === "completed" || s.pending || !vouches(s, w.policy, w.now)) return;
  if (s.status === "queued") {
    d1MoveQueuedDeadline(w, s.attempt, staleQueuedAt(s, w.policy));
    return;
  }
  if (s.lastHeartbeatAt === null) return;
  const answer = d1Heartbeat(w, s.attempt, s.lastHeartbeatAt, true);
  if (!answer.ok) {
    save(w, followed(w, s, answer.run));
    return;
  }
  w.tracker = { ...s, lastFlushedAt: s.lastHeartbeatAt };
}

/** RunTracker.deadLettered, behind the dead-letter bridge (which goes to D1 itself when no tracker holds the run). */
export function deadLettered(w: World, dispatch: number): void {
  const s = w.tracker;
  if (!s) {
    d1Apply(w, { type: "dead_letter" }, { actor: "dead_letter", dispatch });
    return;
  }
  if (s.status === "completed" || dispatch !== s.dispatch.n || s.dispatch.claimed || s.status !== "queued") {
    w.tally("dead_letter_ignored");
    return;
  }
  const answer = d1Apply(w, { type: "dead_letter" }, { actor: "dead_letter", dispatch });
  if (answer.run) save(w, followed(w, s, answer.run));
}

// --- The sweep (mirrors runSweep's handle) -----------------------------------

export type Observation = NonNullable<World["slots"][number]>;

/** What the sweep's keyset read returns for this run: overdue past the grace, not completed. */
export function sweepRead(w: World): Observation | null {
  const r = w.d1;
  if (r.state.status === "completed" || r.deadlineAt === null || r.deadlineAt >= w.now - sweepGraceMs) return null;
  return { status: r.state.status, attempt: r.state.attempt, deadlineAt: r.deadlineAt };
}

/** One run of the sweep on what it read (possibly a while ago): a vouching tracker is believed, else a reconcile fenced on the deadline read. */
export function sweepHandle(w: World, o: Observation): void {
  const s = w.tracker;
  if (s && vouches(s, w.policy, w.now)) {
    w.tally("sweep:vouched");
    try {
      refresh(w);
    } catch (error) {
      onlyD1Down(error);
      // Believed whether or not the refresh lands.
    }
    return;
  }
  if (!s && o.status === "queued") {
    w.tally("sweep:adopted");
    track(w, { attempt: o.attempt, dueAt: w.now, adopt: true });
    return;
  }
  const event: LifecycleEvent = {
    type: "reconcile",
    detector: "sweep",
    reason: o.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running",
    observed: { status: o.status, attempt: o.attempt },
  };
  d1Apply(w, event, { actor: "sweep", expectDeadlineAt: o.deadlineAt });
}

// --- The consumer and the attempts -------------------------------------------

/** The consumer takes a copy: a claim; an attempt starts only on `ok`. A D1 failure retries the message. */
export function deliver(w: World, index: number, keepCopy: boolean): void {
  const copy = w.queue[index]!;
  if (!keepCopy) w.queue.splice(index, 1);
  let answer: ReturnType<typeof claim>;
  try {
    answer = claim(w, copy.n);
  } catch (error) {
    onlyD1Down(error);
    if (!keepCopy) w.queue.push({ n: copy.n, visibleAt: w.now });
    return;
  }
  if (w.period?.sent.has(copy.n)) w.period.delivered = true;
  w.tally(answer.ok ? "claim:ok" : `claim:${answer.refusal}`);
  if (answer.ok) {
    w.attempts.set(answer.attempt, { n: answer.attempt, dispatch: copy.n, alive: true, lastBeatAt: w.now, reportHeld: false, reported: false });
  }
}

export const FINISHES = ["succeeded", "partially_succeeded", "failed", "error_retryable", "error_final", "invalid_input", "timeout"] as const;
export type Finish = (typeof FINISHES)[number];

function reportOf(attempt: number, how: Finish): Report {
  switch (how) {
    case "succeeded":
    case "partially_succeeded":
    case "failed":
      return { kind: "result", attempt, outcome: how };
    case "error_retryable":
      return { kind: "failure", attempt, reason: "handler.error", retryable: true, message: "boom" };
    case "error_final":
      return { kind: "failure", attempt, reason: "handler.error", retryable: false, message: "boom" };
    case "invalid_input":
      return { kind: "failure", attempt, reason: "input.invalid", retryable: false, message: "bad" };
    case "timeout":
      // Attempt timeouts are retryable failures (as in Temporal).
      return { kind: "failure", attempt, reason: "attempt.timeout", retryable: true, message: "timed out" };
  }
}

/** An attempt ends and its consumer reports (twice when the first answer was lost); the message is acked. */
export function finish(w: World, a: Attempt, how: Finish, twice: boolean): void {
  a.alive = false;
  a.reported = true;
  const r = reportOf(a.n, how);
  report(w, r);
  if (twice) report(w, r);
}

/** The consumer invocation dies: its attempt stops beating and its message is redelivered. */
export function crash(w: World, a: Attempt): void {
  a.alive = false;
  w.queue.push({ n: a.dispatch, visibleAt: w.now });
}

export function beat(w: World, a: Attempt): void {
  a.lastBeatAt = w.now;
  // A refused heartbeat (fenced, terminal) aborts the attempt.
  if (!heartbeat(w, a.n)) a.alive = false;
}

/** The clock moves on; the platform fires the alarm at its time, unless this tick holds it (a delayed alarm). */
export function tick(w: World, ms: number, holdAlarm: boolean): void {
  const to = w.now + ms;
  for (let i = 0; !holdAlarm && w.alarmAt !== null && w.alarmAt <= to; i++) {
    assert(i < 50, () => `the alarm keeps firing without settling: ${describe(w)}`);
    w.now = Math.max(w.now, w.alarmAt);
    alarm(w);
  }
  if (holdAlarm && w.alarmAt !== null && w.alarmAt <= to && w.tracker?.status !== "completed") {
    w.alarmOverdue = true;
    if (w.period) w.period.alarmLate = true;
  }
  w.now = to;
}

export function describe(w: World): string {
  return JSON.stringify({ now: w.now, d1: w.d1, tracker: w.tracker, alarmAt: w.alarmAt, queue: w.queue, period: w.period && { ...w.period, sent: [...w.period.sent] } });
}

export const liveAttempts = (w: World) => [...w.attempts.values()].filter((a) => a.alive);
export const visibleCopies = (w: World) => w.queue.flatMap((c, i) => (c.visibleAt <= w.now ? [i] : []));
