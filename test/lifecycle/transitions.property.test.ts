// The dispatch model (contract v2 section 4) as a model-based property test.
//
// The world (dispatch-world.ts) runs around the PURE functions the Durable
// Object, the run service and the sweep compose, with a D1 record, the
// tracker's real `TrackerState`, a clock, queue messages in flight (copies of
// dispatch numbers, duplicates and stale ones included) and live attempts that
// know their own last heartbeat. Random steps interleave every actor; after
// each step the world's evidence (what really happened) is checked against
// what the machinery decided. Then only the machinery acts (ticks, its alarm,
// the sweep, deliveries of what is still in flight) and must reach a terminal
// state within a bound computed from the policy: the test injects no verdict of
// its own, so a machinery that forgets a run fails here.
import fc from "fast-check";
import { expect, it } from "vitest";
import {
  decide,
  heartbeatDeadline,
  initialState,
  reasonFamily,
  type ExecutionReasonCode,
  type FinalOutcome,
  type LifecycleEvent,
  type LifecyclePolicy,
  type RunState,
} from "../../src/lifecycle";
import { backoffMs, MAX_SENDS, resendAt, TRACKER_RETENTION_MS } from "../../src/tracker/state";
import {
  alarm,
  assert,
  beat,
  crash,
  D1Down,
  deadLettered,
  deliver,
  describe,
  finish,
  FINISHES,
  liveAttempts,
  newWorld,
  sweepGraceMs,
  sweepHandle,
  sweepRead,
  SWEEP_EVERY_MS,
  tick,
  visibleCopies,
  type ApplyOptions,
  type Fault,
  type Finish,
  type World,
} from "./dispatch-world";

// ---------------------------------------------------------------------------
// Invariants
// ---------------------------------------------------------------------------

/** A transition D1 is about to take, against the evidence. */
function checkTransition(w: World, event: LifecycleEvent, from: RunState, to: RunState, o: ApplyOptions): void {
  const p = w.policy;
  const what = () => `${o.actor} ${JSON.stringify(event)} at ${w.now}: ${describe(w)}`;
  assert(w.terminal === null, () => `terminal is forever, yet ${what()}`);
  if (w.heldReport) {
    const h = w.heldReport;
    const isIt =
      (event.type === "result" || event.type === "attempt_failure") &&
      event.attempt === h.attempt &&
      (event.type === "result") === (h.kind === "result");
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
      assert(
        o.dispatch !== undefined && w.period !== null && w.period.sent.has(o.dispatch),
        () => `only the run's current dispatch starts an attempt: ${what()}`,
      );
      break;
    case "result":
    case "attempt_failure":
      assert(
        w.leaseHolder === event.attempt && w.attempts.get(event.attempt)?.reported === true,
        () => `a fenced attempt changed the run: ${what()}`,
      );
      if (event.type === "attempt_failure" && event.retryable && event.attempt < p.maxAttempts) {
        assert(to.status === "queued", () => `a retryable failure with attempts left became a verdict: ${what()}`);
      }
      break;
    case "heartbeat_lost":
      assert(
        !alive(event.attempt),
        () => `heartbeat_lost for an attempt whose last heartbeat is under ${p.heartbeatTimeoutMs} ms old (or that reported): ${what()}`,
      );
      if (event.attempt < p.maxAttempts) assert(to.status === "queued", () => `a lost attempt with attempts left became a verdict: ${what()}`);
      break;
    case "reconcile":
      if (event.reason === "lifecycle.stale_running") {
        assert(!alive(from.attempt), () => `the sweep failed a live attempt: ${what()}`);
      } else {
        const q = w.period;
        assert(
          q !== null && !q.delivered && w.now >= q.since + p.staleQueuedAfterMs,
          () => `stale_queued although a dispatch was delivered or not yet stale: ${what()}`,
        );
        // A dispatch is re-sent MAX_SENDS times before the tracker declares it stale, even
        // when its alarm was held past the re-send times or it learnt of the requeue late
        // (D1 committed it, its answer was lost, and D1 kept refusing writes).
        if (o.actor === "tracker_alarm") {
          assert(q.sends >= MAX_SENDS, () => `stale_queued after ${q.sends} of ${MAX_SENDS} sends: ${what()}`);
        }
      }
      // While settling the alarm fires on time and D1 answers: the sweep, the backstop, may only
      // decide for a tracker still backing off from failures it met earlier.
      const backingOff = w.tracker !== null && w.tracker.retryAt !== null && w.tracker.retryAt > w.now;
      assert(
        !(w.settling && o.actor === "sweep" && !backingOff),
        () => `the sweep had to decide while the tracker's alarm ran on time: ${what()}`,
      );
      break;
    case "dead_letter": {
      // The queue gave up on the newest dispatch, and no attempt ever ran from it (a claim
      // whose answer was lost started one in D1 only: nothing ran).
      const n = o.dispatch;
      const ranFrom = [...w.attempts.values()].some((a) => a.dispatch === n);
      assert(
        n !== undefined && n === w.latestSent && !ranFrom,
        () => `a dead letter of a dispatch that is not the current one, or that ran, decided the run: ${what()}`,
      );
      break;
    }
    case "heartbeat":
      throw new Error(`heartbeats are not transitions: ${what()}`);
  }
}

/** What checkStep compares against: the tracker before the step. */
function beforeStep(w: World): { trackerCompleted: boolean; trackerAttempt: number; dispatch: number } {
  return { trackerCompleted: w.tracker?.status === "completed", trackerAttempt: w.tracker?.attempt ?? 0, dispatch: w.tracker?.dispatch.n ?? 0 };
}

/** The state after every step. */
function checkStep(w: World, before: ReturnType<typeof beforeStep>): void {
  const s = w.d1.state;
  const p = w.policy;
  const at = () => describe(w);
  assert(s.maxAttempts === p.maxAttempts && s.attempt >= 0 && s.attempt <= p.maxAttempts, () => `attempt out of range: ${at()}`);
  assert((s.outcome === "pending") === (s.status !== "completed"), () => `outcome pending iff not completed: ${at()}`);
  const lifecycle = s.reasonCode !== null && reasonFamily(s.reasonCode) === "lifecycle";
  assert(
    (s.reconciledBy !== null) === lifecycle || s.reasonCode === "queue.max_attempts_exceeded",
    () => `reconciledBy iff decided by the machinery: ${at()}`,
  );
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
    assert(
      w.d1.state.outcome === w.promisedOutcome && w.d1.state.reconciledBy === null,
      () => `the lease holder's result ${w.promisedOutcome} did not decide the run: ${at()}`,
    );
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
  { arbitrary: fc.record({ kind: fc.constant("sweep" as const), fault }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_observe" as const), slot }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_act" as const), slot, fault }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant("dead_letter" as const), pick, fault }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("lose" as const), pick }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("outage" as const), ms: fc.integer({ min: 1_000, max: 90_000 }) }), weight: 2 },
);


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
  w.tally(`settle:from_${w.d1.state.status}`);
  const start = w.now;
  const maxSteps = settleBoundSteps(w.policy);
  let steps = 0;
  const converged = () => w.d1.state.status === "completed" && w.tracker === null;
  while (!converged()) {
    assert(steps < maxSteps, () => `no verdict after ${maxSteps} settle steps: ${describe(w)}`);
    assert(w.now - start <= settleBoundMs(w.policy), () => `no verdict within ${settleBoundMs(w.policy)} ms of settling: ${describe(w)}`);
    steps++;
    const before = beforeStep(w);
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
      // Short histories leave the run live for the settle phase; long ones reach the rare interleavings.
      fc.oneof(fc.array(stepArb, { minLength: 1, maxLength: 12 }), fc.array(stepArb, { minLength: 10, maxLength: 50 })),
      fc.array(fc.constantFrom(...SETTLE_ENDS), { minLength: 1, maxLength: 4 }),
      (policy, steps, ends) => {
        const w = newWorld(policy, { tally, onTransition: checkTransition });
        for (const step of steps) {
          const before = beforeStep(w);
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
    "ok:reconcile:sweep:terminal", "ok:dead_letter:dead_letter:terminal", "late_result_discarded",
    "report_already_committed", "report_again_noop", "claim_adopted_committed", "settle:from_queued", "settle:from_running",
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
  fc.record({
    type: fc.constant("result" as const),
    attempt: attemptArb,
    outcome: fc.constantFrom<FinalOutcome>("succeeded", "partially_succeeded", "failed"),
  }),
  fc.record({
    type: fc.constant("attempt_failure" as const),
    attempt: attemptArb,
    retryable: fc.boolean(),
    reason: fc.constantFrom<ExecutionReasonCode>("handler.error", "attempt.timeout", "input.invalid"),
  }),
  fc.record({ type: fc.constant("heartbeat_lost" as const), attempt: attemptArb }),
  fc
    .record({
      detector: fc.constantFrom<"sweep" | "tracker_alarm">("sweep", "tracker_alarm"),
      status: fc.constantFrom<"queued" | "running">("queued", "running"),
      attempt: fc.integer({ min: 0, max: 5 }),
    })
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
          assert(
            !d.ok || (event.observed.status === before.status && event.observed.attempt === before.attempt),
            () => `a stale observation decided: ${what}`,
          );
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
