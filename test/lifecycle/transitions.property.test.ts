// The dispatch model (contract v2 section 4) as a model-based property test.
//
// A small world runs around the PURE functions the Durable Object, the run
// service and the sweep compose — decide, alarmAction, vouches, nextDispatch,
// storedDeadline, heartbeatDeadline — with a D1 record, the tracker's real
// `TrackerState`, a clock, queue messages in flight (copies of dispatch
// numbers, duplicates and stale ones included) and live attempts that know
// their own last heartbeat. Random steps interleave every actor; after each
// step the world's evidence (what really happened) is checked against what the
// machinery decided. Then only the machinery acts (ticks, its alarm, the sweep,
// deliveries of what is still in flight) and must reach a terminal state within
// a bound computed from the policy: the test injects no verdict of its own, so
// a machinery that forgets a run fails here.
//
// The world's helpers mirror the Durable Object's methods one for one (see the
// comment on each); they are kept to the same order of checks so a reader can
// hold the two side by side.
import fc from "fast-check";
import { expect, it } from "vitest";
import {
  DEFAULT_SETTINGS,
  decide,
  heartbeatDeadline,
  initialState,
  reasonFamily,
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
  MAX_SENDS,
  nextAlarmAt,
  nextDispatch,
  resendAt,
  staleQueuedAt,
  TRACKER_RETENTION_MS,
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
function assert(condition: boolean, message: () => string): asserts condition {
  if (!condition) throw new Error(message());
}

// ---------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------

/** The sweep runs on a cron every minute (wrangler.toml's crons). */
const SWEEP_EVERY_MS = 60_000;
const { heartbeatFlushIntervalMs, sweepGraceMs } = DEFAULT_SETTINGS;

/** A one-shot D1 fault for the next write of a step: refused before commit, or committed with its answer lost. */
type Fault = "none" | "fail" | "lost";
class D1Down extends Error {}

/**
 * Where the Durable Object catches an infrastructure error, the world catches
 * only D1's: a failed invariant thrown from inside a write must not be taken
 * for an outage and retried away.
 */
function onlyD1Down(error: unknown): void {
  if (!(error instanceof D1Down)) throw error;
}

/** The run's D1 row, as far as the lifecycle reads it. */
interface D1Run {
  state: RunState;
  deadlineAt: number | null;
  lastHeartbeatAt: number | null;
  completedAt: number | null;
  lastError: { attempt: number; reason: ExecutionReasonCode } | null;
}

type RunAnswer = { ok: true; run: D1Run } | { ok: false; refusal: string; run: D1Run | null };

/** A queue message: a copy of a dispatch number, deliverable once its delay has passed. */
interface Copy {
  n: number;
  visibleAt: number;
}

/** An attempt as it really is (the evidence), not as the tracker believes it. */
interface Attempt {
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
interface Period {
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
type Report = AttemptReport;

interface World {
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
}

function newWorld(policy: LifecyclePolicy, tally: (key: string) => void): World {
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
    tally,
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

interface ApplyOptions {
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
    checkTransition(w, event, d.from, d.to, o);
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
function alarm(w: World): void {
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
function deadLettered(w: World, dispatch: number): void {
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

type Observation = NonNullable<World["slots"][number]>;

/** What the sweep's keyset read returns for this run: overdue past the grace, not completed. */
function sweepRead(w: World): Observation | null {
  const r = w.d1;
  if (r.state.status === "completed" || r.deadlineAt === null || r.deadlineAt >= w.now - sweepGraceMs) return null;
  return { status: r.state.status, attempt: r.state.attempt, deadlineAt: r.deadlineAt };
}

/** One run of the sweep on what it read (possibly a while ago): a vouching tracker is believed, else a reconcile fenced on the deadline read. */
function sweepHandle(w: World, o: Observation): void {
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
function deliver(w: World, index: number, keepCopy: boolean): void {
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

const FINISHES = ["succeeded", "partially_succeeded", "failed", "error_retryable", "error_final", "invalid_input", "timeout"] as const;
type Finish = (typeof FINISHES)[number];

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
function finish(w: World, a: Attempt, how: Finish, twice: boolean): void {
  a.alive = false;
  a.reported = true;
  const r = reportOf(a.n, how);
  report(w, r);
  if (twice) report(w, r);
}

/** The consumer invocation dies: its attempt stops beating and its message is redelivered. */
function crash(w: World, a: Attempt): void {
  a.alive = false;
  w.queue.push({ n: a.dispatch, visibleAt: w.now });
}

function beat(w: World, a: Attempt): void {
  a.lastBeatAt = w.now;
  // A refused heartbeat (fenced, terminal) aborts the attempt.
  if (!heartbeat(w, a.n)) a.alive = false;
}

/** The clock moves on; the platform fires the alarm at its time, unless this tick holds it (a delayed alarm). */
function tick(w: World, ms: number, holdAlarm: boolean): void {
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

// ---------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------

function describe(w: World): string {
  return JSON.stringify({ now: w.now, d1: w.d1, tracker: w.tracker, alarmAt: w.alarmAt, queue: w.queue, period: w.period && { ...w.period, sent: [...w.period.sent] } });
}

/** A transition D1 is about to take, against the evidence. */
function checkTransition(w: World, event: LifecycleEvent, from: RunState, to: RunState, o: ApplyOptions): void {
  const p = w.policy;
  const what = () => `${o.actor} ${JSON.stringify(event)} at ${w.now}: ${describe(w)}`;
  assert(w.terminal === null, () => `terminal is forever, yet ${what()}`);
  if (w.heldReport) {
    const h = w.heldReport;
    const isIt = (event.type === "result" || event.type === "attempt_failure") && event.attempt === h.attempt && (event.type === "result") === (h.kind === "result");
    assert(isIt, () => `a verdict overrode the report the lease holder handed over (${JSON.stringify(h)}): ${what()}`);
    w.heldReport = null;
  }
  const alive = (n: number) => {
    const a = w.attempts.get(n);
    return a !== undefined && (a.reportHeld || w.now < heartbeatDeadline(a.lastBeatAt, p));
  };
  switch (event.type) {
    case "claim":
      assert(event.attempt === from.attempt + 1, () => `attempts are allocated in order: ${what()}`);
      assert(o.dispatch !== undefined && w.period !== null && w.period.sent.has(o.dispatch), () => `only the run's current dispatch starts an attempt: ${what()}`);
      break;
    case "result":
    case "attempt_failure":
      assert(w.leaseHolder === event.attempt && w.attempts.get(event.attempt)?.reported === true, () => `a fenced attempt changed the run: ${what()}`);
      if (event.type === "attempt_failure" && event.retryable && event.attempt < p.maxAttempts) {
        assert(to.status === "queued", () => `a retryable failure with attempts left became a verdict: ${what()}`);
      }
      break;
    case "heartbeat_lost":
      assert(!alive(event.attempt), () => `heartbeat_lost for an attempt whose last heartbeat is under ${p.heartbeatTimeoutMs} ms old (or that reported): ${what()}`);
      if (event.attempt < p.maxAttempts) assert(to.status === "queued", () => `a lost attempt with attempts left became a verdict: ${what()}`);
      break;
    case "reconcile":
      if (event.reason === "lifecycle.stale_running") {
        assert(!alive(from.attempt), () => `the sweep failed a live attempt: ${what()}`);
      } else {
        const q = w.period;
        assert(q !== null && !q.delivered && w.now >= q.since + p.staleQueuedAfterMs, () => `stale_queued although a dispatch was delivered or not yet stale: ${what()}`);
        // Re-sends are timed from the dispatch's due time (resendAt): a tracker that could
        // send on time sends MAX_SENDS times first. One whose alarm the platform held, or
        // that learnt of the requeue late (D1 committed it but the answer was lost and the
        // writes kept failing), sends fewer: see the note at the end of this file.
        const onTime = !q.alarmLate && q.firstSentAt !== null && q.firstSentAt < resendAt({ n: 0, dueAt: q.since, claimed: false, sends: 1, sentAt: null }, p);
        if (o.actor === "tracker_alarm" && onTime) {
          assert(q.sends >= MAX_SENDS, () => `stale_queued after ${q.sends} of ${MAX_SENDS} sends: ${what()}`);
        }
      }
      // While settling the alarm fires on time and D1 answers: the sweep, the backstop, may only
      // decide for a tracker still backing off from failures it met earlier.
      const backingOff = w.tracker !== null && w.tracker.retryAt !== null && w.tracker.retryAt > w.now;
      assert(!(w.settling && o.actor === "sweep" && !backingOff), () => `the sweep had to decide while the tracker's alarm ran on time: ${what()}`);
      break;
    case "dead_letter": {
      // The queue gave up on the newest dispatch, and no attempt ever ran from it (a claim
      // whose answer was lost started one in D1 only: nothing ran).
      const n = o.dispatch;
      const ranFrom = [...w.attempts.values()].some((a) => a.dispatch === n);
      assert(n !== undefined && n === w.latestSent && !ranFrom, () => `a dead letter of a dispatch that is not the current one, or that ran, decided the run: ${what()}`);
      break;
    }
    case "heartbeat":
      throw new Error(`heartbeats are not transitions: ${what()}`);
  }
}

/** The state after every step. */
function checkStep(w: World, before: { trackerCompleted: boolean; trackerAttempt: number; dispatch: number }): void {
  const s = w.d1.state;
  const p = w.policy;
  const at = () => describe(w);
  assert(s.maxAttempts === p.maxAttempts && s.attempt >= 0 && s.attempt <= p.maxAttempts, () => `attempt out of range: ${at()}`);
  assert((s.outcome === "pending") === (s.status !== "completed"), () => `outcome pending iff not completed: ${at()}`);
  const lifecycle = s.reasonCode !== null && reasonFamily(s.reasonCode) === "lifecycle";
  assert((s.reconciledBy !== null) === lifecycle || s.reasonCode === "queue.max_attempts_exceeded", () => `reconciledBy iff decided by the machinery: ${at()}`);
  assert((s.reasonCode !== null) === (s.outcome === "failed"), () => `reasonCode iff failed: ${at()}`);
  if (w.terminal) {
    assert(JSON.stringify(w.terminal) === JSON.stringify(s) && w.d1.deadlineAt === null, () => `terminal is forever: ${at()}`);
  }
  assert(w.terminalTransitions <= 1, () => `${w.terminalTransitions} terminal transitions: ${at()}`);
  const t = w.tracker;
  if (before.trackerCompleted) assert(t === null || t.status === "completed", () => `the tracker left its terminal state: ${at()}`);
  if (t) {
    assert(t.attempt >= before.trackerAttempt && t.dispatch.n >= before.dispatch, () => `the tracker moved backwards: ${at()}`);
    assert(t.attempt <= p.maxAttempts, () => `the tracker allocated attempt ${t.attempt} of ${p.maxAttempts}: ${at()}`);
  }
  if (s.status === "queued") {
    // Attempts are not left unspent: a run D1 holds in the queue has a dispatch in the
    // queue, or a tracker that holds the report (or the write) that put it there.
    assert(w.period !== null, () => `queued without a due time: ${at()}`);
    // In the queue, or in the outbox with the alarm armed to send it (at once, or after a write's backoff).
    const outboxDue = t !== null && w.alarmAt !== null && w.alarmAt <= Math.max(w.now, t.retryAt ?? w.now);
    const dispatched = t !== null && t.status === "queued" && t.attempt === s.attempt && !t.dispatch.claimed && (t.dispatch.sends >= 1 || outboxDue);
    const catchingUp = t !== null && t.status === "running" && t.attempt === s.attempt && (t.pending !== null || t.retryAt !== null);
    assert(dispatched || catchingUp, () => `queued with no dispatch on its way: ${at()}`);
  }
}

function checkEnd(w: World): void {
  const at = () => describe(w);
  assert(w.d1.state.status === "completed", () => `did not converge: ${at()}`);
  assert(w.terminalTransitions === 1, () => `${w.terminalTransitions} terminal transitions: ${at()}`);
  assert(w.tracker === null || w.tracker.status === "completed", () => `the tracker still thinks the run is live: ${at()}`);
  if (w.promisedOutcome !== null) {
    assert(w.d1.state.outcome === w.promisedOutcome && w.d1.state.reconciledBy === null, () => `the lease holder's result ${w.promisedOutcome} did not decide the run: ${at()}`);
  }
}

// ---------------------------------------------------------------------------
// Steps
// ---------------------------------------------------------------------------

type Step =
  | { kind: "deliver"; pick: number; keepCopy: boolean; fault: Fault }
  | { kind: "heartbeat"; pick: number; fault: Fault }
  | { kind: "tick"; ms: number; holdAlarm: boolean }
  | { kind: "crash"; pick: number }
  | { kind: "finish"; pick: number; how: Finish; twice: boolean; fault: Fault }
  | { kind: "alarm"; fault: Fault }
  | { kind: "sweep"; fault: Fault }
  | { kind: "sweep_observe"; slot: number }
  | { kind: "sweep_act"; slot: number; fault: Fault }
  | { kind: "dead_letter"; pick: number; fault: Fault }
  | { kind: "lose"; pick: number }
  | { kind: "outage"; ms: number };

const pick = fc.nat({ max: 7 });
const slot = fc.nat({ max: 1 });
const fault = fc.oneof({ arbitrary: fc.constant<Fault>("none"), weight: 6 }, { arbitrary: fc.constantFrom<Fault>("fail", "lost"), weight: 2 });

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("deliver" as const), pick, keepCopy: fc.boolean(), fault }), weight: 6 },
  { arbitrary: fc.record({ kind: fc.constant("heartbeat" as const), pick, fault }), weight: 5 },
  {
    arbitrary: fc.record({
      kind: fc.constant("tick" as const),
      ms: fc.oneof(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 150_000 })),
      holdAlarm: fc.nat({ max: 4 }).map((n) => n === 0),
    }),
    weight: 8,
  },
  { arbitrary: fc.record({ kind: fc.constant("crash" as const), pick }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("finish" as const), pick, how: fc.constantFrom(...FINISHES), twice: fc.boolean(), fault }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("alarm" as const), fault }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("sweep" as const), fault }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_observe" as const), slot }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_act" as const), slot, fault }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("dead_letter" as const), pick, fault }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("lose" as const), pick }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("outage" as const), ms: fc.integer({ min: 1_000, max: 90_000 }) }), weight: 1 },
);

const liveAttempts = (w: World) => [...w.attempts.values()].filter((a) => a.alive);
const visibleCopies = (w: World) => w.queue.flatMap((c, i) => (c.visibleAt <= w.now ? [i] : []));

/** Run one step; a D1 failure that escapes is what the platform does with it (the caller retries later). */
function runStep(w: World, step: Step): void {
  w.fault = "fault" in step ? step.fault : "none";
  try {
    switch (step.kind) {
      case "deliver": {
        const visible = visibleCopies(w);
        if (visible.length > 0) deliver(w, visible[step.pick % visible.length]!, step.keepCopy);
        break;
      }
      case "heartbeat": {
        const live = liveAttempts(w);
        if (live.length > 0) beat(w, live[step.pick % live.length]!);
        break;
      }
      case "tick":
        tick(w, step.ms, step.holdAlarm);
        break;
      case "crash": {
        const live = liveAttempts(w);
        if (live.length > 0) crash(w, live[step.pick % live.length]!);
        break;
      }
      case "finish": {
        const live = liveAttempts(w);
        if (live.length > 0) finish(w, live[step.pick % live.length]!, step.how, step.twice);
        break;
      }
      case "alarm":
        // At least once: the platform may run it again, early or late; it decides by the clock.
        alarm(w);
        break;
      case "sweep": {
        const o = sweepRead(w);
        if (o) sweepHandle(w, o);
        break;
      }
      case "sweep_observe":
        w.slots[step.slot] = sweepRead(w) ?? w.slots[step.slot] ?? null;
        break;
      case "sweep_act": {
        const o = w.slots[step.slot];
        if (o) sweepHandle(w, o);
        break;
      }
      case "outage":
        w.outageUntil = w.now + step.ms;
        break;
      case "dead_letter":
      case "lose": {
        if (w.queue.length === 0) break;
        const [copy] = w.queue.splice(step.pick % w.queue.length, 1);
        if (step.kind === "dead_letter") deadLettered(w, copy!.n);
        break;
      }
    }
  } catch (error) {
    if (!(error instanceof D1Down)) throw error;
    w.tally("d1_error_escaped");
  }
  w.fault = "none";
}

/** How the attempts started while settling end (by attempt number). */
const SETTLE_ENDS = [...FINISHES, "crash"] as const;
type SettleEnd = (typeof SETTLE_ENDS)[number];

/**
 * The settle bound, from the policy: each attempt left costs at most a retry
 * delay, a queued stretch up to staleQueuedAfterMs, and a heartbeat timeout;
 * a stored report waits at most the longest backoff; the sweep's minute and
 * its grace come on top once.
 */
function settleBoundMs(p: LifecyclePolicy): number {
  const perAttempt = p.retryDelaySeconds * 1000 + p.staleQueuedAfterMs + p.heartbeatTimeoutMs;
  return backoffMs(Number.MAX_SAFE_INTEGER) + (p.maxAttempts + 1) * perAttempt + SWEEP_EVERY_MS + sweepGraceMs + TRACKER_RETENTION_MS;
}

/** Each settle step is one thing the machinery waits for: an alarm, a message's delay, the sweep's cron. */
function settleBoundSteps(p: LifecyclePolicy): number {
  const perAttempt = MAX_SENDS + 2 /* claim, loss */ + Math.ceil((p.staleQueuedAfterMs + p.heartbeatTimeoutMs) / SWEEP_EVERY_MS) + 2;
  return 8 /* backoff of a stored report */ + (p.maxAttempts + 1) * perAttempt + 2 /* the tracker learns the verdict, then forgets the run */;
}

/**
 * Only the machinery acts: the alarm at its time, the sweep on its cron, the
 * queue delivers what is in flight. Converged: D1 holds a verdict and the
 * tracker learnt it (a verdict whose answer was lost is learnt by its alarm)
 * and, its retention over, forgot the run.
 */
function settlePhase(w: World, ends: readonly SettleEnd[]): number {
  w.settling = true;
  // The machinery is healthy from here on: D1 answers, alarms fire on time.
  w.outageUntil = 0;
  const start = w.now;
  const maxSteps = settleBoundSteps(w.policy);
  let steps = 0;
  const converged = () => w.d1.state.status === "completed" && w.tracker === null;
  while (!converged()) {
    assert(steps < maxSteps, () => `no verdict after ${maxSteps} settle steps: ${describe(w)}`);
    assert(w.now - start <= settleBoundMs(w.policy), () => `no verdict within ${settleBoundMs(w.policy)} ms of settling: ${describe(w)}`);
    steps++;
    const before = { trackerCompleted: w.tracker?.status === "completed", trackerAttempt: w.tracker?.attempt ?? 0, dispatch: w.tracker?.dispatch.n ?? 0 };
    if (w.alarmAt !== null && w.alarmAt <= w.now) alarm(w);
    if (w.now % SWEEP_EVERY_MS === 0) {
      const o = sweepRead(w);
      if (o) sweepHandle(w, o);
    }
    for (let i = visibleCopies(w)[0]; i !== undefined; i = visibleCopies(w)[0]) deliver(w, i, false);
    for (const a of liveAttempts(w)) {
      const end = ends[(a.n - 1) % ends.length]!;
      if (end === "crash") crash(w, a);
      else finish(w, a, end, false);
    }
    checkStep(w, before);
    if (converged()) break;
    const next = Math.min(
      w.alarmAt ?? Infinity,
      ...w.queue.map((c) => c.visibleAt),
      w.d1.state.status === "completed" ? Infinity : (Math.floor(w.now / SWEEP_EVERY_MS) + 1) * SWEEP_EVERY_MS,
    );
    w.now = Math.max(w.now, next);
  }
  return steps;
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

const policyArb: fc.Arbitrary<LifecyclePolicy> = fc.record({
  timeoutMs: fc.constant(60_000),
  expectedRuntimeMs: fc.constant(20_000),
  heartbeatIntervalMs: fc.constant(1_000),
  heartbeatTimeoutMs: fc.constantFrom(3_000, 5_000),
  staleQueuedAfterMs: fc.constantFrom(30_000, 120_000),
  staleRunningAfterMs: fc.constantFrom(20_000, 90_000),
  maxAttempts: fc.integer({ min: 1, max: 4 }),
  retryDelaySeconds: fc.constantFrom(0, 5),
  queue: fc.constant("operations"),
});

it("the dispatch model: verdicts agree with the evidence, attempts are spent, and the machinery alone converges", () => {
  const seen = new Map<string, number>();
  const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);
  let longestSettle = 0;
  fc.assert(
    fc.property(
      policyArb,
      fc.array(stepArb, { minLength: 10, maxLength: 50 }),
      fc.array(fc.constantFrom(...SETTLE_ENDS), { minLength: 1, maxLength: 4 }),
      (policy, steps, ends) => {
        const w = newWorld(policy, tally);
        for (const step of steps) {
          const before = { trackerCompleted: w.tracker?.status === "completed", trackerAttempt: w.tracker?.attempt ?? 0, dispatch: w.tracker?.dispatch.n ?? 0 };
          runStep(w, step);
          checkStep(w, before);
        }
        longestSettle = Math.max(longestSettle, settlePhase(w, ends));
        checkEnd(w);
      },
    ),
    { numRuns: 7_000 },
  );
  // What the histories exercised, so the property cannot pass vacuously.
  const kinds = [
    "ok:claim:consumer", "ok:result:consumer:terminal", "ok:attempt_failure:consumer", "ok:attempt_failure:consumer:terminal",
    "ok:heartbeat_lost:tracker", "ok:heartbeat_lost:tracker:terminal", "ok:reconcile:tracker_alarm:terminal",
    "ok:reconcile:sweep:terminal", "ok:dead_letter:dead_letter:terminal", "sweep:lost_race", "late_result_discarded", "report_already_committed", "report_again_noop", "claim_adopted_committed",
    "tracker_adopted_running", "claim:stale_dispatch", "claim:duplicate", "claim:terminal", "sweep:vouched", "dead_letter_ignored",
    "resent", "alarm:apply_pending", "alarm:heartbeat_lost", "alarm:stale_queued", "alarm:cleanup", "fault:fail", "fault:lost", "fault:outage",
  ];
  expect(kinds.filter((k) => !seen.has(k))).toEqual([]);
  expect(longestSettle).toBeGreaterThan(1);
});

// The transition table alone, against arbitrary event sequences (the world
// above only presents what the tracker lets through; here decide() must refuse
// an older attempt, a stale observation, a duplicate claim by itself).
const attemptArb = fc.integer({ min: 1, max: 5 });
const eventArb: fc.Arbitrary<LifecycleEvent> = fc.oneof(
  fc.record({ type: fc.constant("claim" as const), attempt: attemptArb }),
  fc.record({ type: fc.constant("heartbeat" as const), attempt: attemptArb }),
  fc.record({ type: fc.constant("result" as const), attempt: attemptArb, outcome: fc.constantFrom<FinalOutcome>("succeeded", "partially_succeeded", "failed") }),
  fc.record({
    type: fc.constant("attempt_failure" as const),
    attempt: attemptArb,
    retryable: fc.boolean(),
    reason: fc.constantFrom<ExecutionReasonCode>("handler.error", "attempt.timeout", "input.invalid"),
  }),
  fc.record({ type: fc.constant("heartbeat_lost" as const), attempt: attemptArb }),
  fc
    .record({ detector: fc.constantFrom<"sweep" | "tracker_alarm">("sweep", "tracker_alarm"), status: fc.constantFrom<"queued" | "running">("queued", "running"), attempt: fc.integer({ min: 0, max: 5 }) })
    .map(({ detector, status, attempt }): LifecycleEvent => ({
      type: "reconcile",
      detector,
      reason: status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running",
      observed: { status, attempt },
    })),
  fc.constant<LifecycleEvent>({ type: "dead_letter" }),
);

it("decide: terminal is forever, one terminal transition, and a fenced sender never changes the run", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.array(eventArb, { maxLength: 24 }), (maxAttempts, events) => {
      let s: RunState = Object.freeze(initialState(maxAttempts));
      let terminal = 0;
      for (const event of events) {
        const before = s;
        const what = `${JSON.stringify(event)} on ${JSON.stringify(before)}`;
        const d = decide(s, event);
        if (before.status === "completed") assert(!d.ok && d.refusal === "terminal", () => `completed run changed by ${what}`);
        const lease = before.status === "running" ? before.attempt : null;
        if (event.type === "claim") assert(!d.ok || event.attempt > before.attempt, () => `an older or equal claim started an attempt: ${what}`);
        if (event.type === "heartbeat" || event.type === "result" || event.type === "attempt_failure" || event.type === "heartbeat_lost") {
          assert(!d.ok || event.attempt === lease, () => `a fenced attempt changed the run: ${what}`);
        }
        if (event.type === "reconcile") {
          assert(!d.ok || (event.observed.status === before.status && event.observed.attempt === before.attempt), () => `a stale observation decided: ${what}`);
        }
        if (!d.ok) continue;
        if (event.type === "heartbeat") assert(JSON.stringify(d.to) === JSON.stringify(before) && d.action === null, () => `a heartbeat changed the run: ${what}`);
        if (d.to.status === "completed") terminal++;
        s = Object.freeze(d.to);
      }
      assert(terminal <= 1, () => `${terminal} terminal transitions`);
    }),
    { numRuns: 4_000 },
  );
});

// Note on re-sends (the waiver in checkTransition's stale_queued case). The
// tracker times its re-sends and its stale_queued verdict from the dispatch's
// due time (resendAt, staleQueuedAt), and checks staleness first. So a tracker
// that reaches a queued dispatch late declares it stale at once, with fewer
// than MAX_SENDS sends, and the last copy may be only milliseconds old:
// - its alarm was held past the re-send times (a platform delay), or
// - D1 committed the requeue but its answer was lost, and D1 kept refusing
//   writes until after the stale time. `followed()` then makes the new
//   dispatch due when D1 said (in the past), sends it, and the same alarm pass
//   declares it stale.
// The property checks the MAX_SENDS rule only for a tracker that had the
// dispatch in the queue before its first re-send time and whose alarm ran on
// time; remove that condition to see both counterexamples.
