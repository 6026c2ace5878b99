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
  initialState,
  storedDeadline,
  type FinalOutcome,
  type LifecycleEvent,
  type LifecyclePolicy,
  type RunState,
} from "../../src/lifecycle";
import { vouches, type TrackerState } from "../../src/tracker/state";
import type { AttemptReport } from "../../src/tracker/protocol";
import { d1Apply, onlyD1Down, type ApplyOptions, type D1Run, type Fault } from "./dispatch-d1";
import { alarm, claim, deadLettered, heartbeat, refresh, report, track } from "./dispatch-tracker";

export { D1Down, type ApplyOptions, type Fault } from "./dispatch-d1";
export { alarm, deadLettered } from "./dispatch-tracker";

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
export const { sweepGraceMs } = DEFAULT_SETTINGS;

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
  const period = w.period && { ...w.period, sent: [...w.period.sent] };
  return JSON.stringify({ now: w.now, d1: w.d1, tracker: w.tracker, alarmAt: w.alarmAt, queue: w.queue, period });
}

export const liveAttempts = (w: World) => [...w.attempts.values()].filter((a) => a.alive);
export const visibleCopies = (w: World) => w.queue.flatMap((c, i) => (c.visibleAt <= w.now ? [i] : []));
