// Random interleavings of every actor of contract section 4 against decide():
// whatever the order, a run completes exactly once, stays completed, and
// fenced senders never change it.
import fc from "fast-check";
import { expect, it } from "vitest";
import {
  decide,
  initialState,
  reasonFamily,
  type ExecutionReasonCode,
  type FinalOutcome,
  type LifecycleEvent,
  type RunState,
} from "../../src/lifecycle";

type Observation = { status: "queued" | "running"; attempt: number };

/**
 * What an actor does, abstractly: observations are captured into a slot at
 * one step and used at a later one, so a detector can act on a stale read.
 */
type Command =
  | { kind: "claim"; attempt: number }
  | { kind: "heartbeat"; attempt: number }
  | { kind: "result"; attempt: number; outcome: FinalOutcome }
  | { kind: "failure"; attempt: number; retryable: boolean; reason: ExecutionReasonCode }
  | { kind: "tracker_observe" }
  | { kind: "tracker_heartbeat_lost" }
  | { kind: "tracker_stale_queued" }
  | { kind: "sweep_observe"; slot: number }
  | { kind: "sweep_reconcile"; slot: number }
  | { kind: "dead_letter" };

type Finish = "dead_letter" | "sweep_fresh" | "tracker_fresh";

const MAX_ATTEMPTS = 4;
// One past the largest maxAttempts, so exhausted claims happen too.
const attemptArb = fc.integer({ min: 1, max: MAX_ATTEMPTS + 1 });

const commandArb: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("claim" as const), attempt: attemptArb }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("heartbeat" as const), attempt: attemptArb }), weight: 2 },
  {
    arbitrary: fc.record({
      kind: fc.constant("result" as const),
      attempt: attemptArb,
      outcome: fc.constantFrom<FinalOutcome>("succeeded", "partially_succeeded", "failed"),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("failure" as const),
      attempt: attemptArb,
      retryable: fc.boolean(),
      reason: fc.constantFrom<ExecutionReasonCode>("handler.error", "attempt.timeout", "input.invalid"),
    }),
    weight: 3,
  },
  { arbitrary: fc.constant({ kind: "tracker_observe" as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: "tracker_heartbeat_lost" as const }), weight: 2 },
  { arbitrary: fc.constant({ kind: "tracker_stale_queued" as const }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_observe" as const), slot: fc.integer({ min: 0, max: 1 }) }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("sweep_reconcile" as const), slot: fc.integer({ min: 0, max: 1 }) }), weight: 1 },
  { arbitrary: fc.constant({ kind: "dead_letter" as const }), weight: 1 },
);

function observe(s: RunState): Observation | null {
  return s.status === "completed" ? null : { status: s.status, attempt: s.attempt };
}

/** A sweep or tracker reconcile built from an observation (the reason follows the observed status). */
function reconcileFrom(detector: "sweep" | "tracker_alarm", o: Observation): LifecycleEvent {
  return {
    type: "reconcile",
    detector,
    reason: o.status === "queued" ? "lifecycle.stale_queued" : "lifecycle.stale_running",
    observed: o,
  };
}

interface Actors {
  trackerSeen: Observation | null;
  sweepSlots: (Observation | null)[];
}

/** Turn a command into an event, or null when the actor has nothing to say. */
function toEvent(cmd: Command, s: RunState, actors: Actors): LifecycleEvent | null {
  switch (cmd.kind) {
    case "claim":
    case "heartbeat":
      return { type: cmd.kind, attempt: cmd.attempt };
    case "result":
      return { type: "result", attempt: cmd.attempt, outcome: cmd.outcome };
    case "failure":
      return { type: "attempt_failure", attempt: cmd.attempt, retryable: cmd.retryable, reason: cmd.reason };
    case "tracker_observe":
      actors.trackerSeen = observe(s) ?? actors.trackerSeen;
      return null;
    case "tracker_heartbeat_lost": {
      const seen = actors.trackerSeen;
      // The tracker only knows a lease once an attempt has claimed it.
      return seen && seen.attempt >= 1 ? { type: "heartbeat_lost", attempt: seen.attempt } : null;
    }
    case "tracker_stale_queued": {
      const seen = actors.trackerSeen;
      return seen && seen.status === "queued" ? reconcileFrom("tracker_alarm", seen) : null;
    }
    case "sweep_observe":
      actors.sweepSlots[cmd.slot] = observe(s) ?? actors.sweepSlots[cmd.slot] ?? null;
      return null;
    case "sweep_reconcile": {
      const o = actors.sweepSlots[cmd.slot];
      return o ? reconcileFrom("sweep", o) : null;
    }
    case "dead_letter":
      return { type: "dead_letter" };
  }
}

function finishEvent(finish: Finish, s: RunState): LifecycleEvent {
  const fresh = observe(s) ?? { status: "running" as const, attempt: Math.max(1, s.attempt) };
  if (finish === "dead_letter") return { type: "dead_letter" };
  return reconcileFrom(finish === "sweep_fresh" ? "sweep" : "tracker_alarm", fresh);
}

/** A plain assertion: cheap enough for millions of checks (expect() is not), and fast-check shrinks on it. */
function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

function sameState(a: RunState, b: RunState): boolean {
  return (
    a.status === b.status &&
    a.outcome === b.outcome &&
    a.attempt === b.attempt &&
    a.maxAttempts === b.maxAttempts &&
    a.reasonCode === b.reasonCode &&
    a.reconciledBy === b.reconciledBy
  );
}

function checkStateInvariants(s: RunState, maxAttempts: number): void {
  const at = JSON.stringify(s);
  assert(s.maxAttempts === maxAttempts, `maxAttempts changed: ${at}`);
  assert(s.attempt >= 0 && s.attempt <= maxAttempts, `attempt out of range: ${at}`);
  assert((s.outcome === "pending") === (s.status !== "completed"), `outcome pending iff not completed: ${at}`);
  const lifecycle = s.reasonCode !== null && reasonFamily(s.reasonCode) === "lifecycle";
  assert((s.reconciledBy !== null) === lifecycle, `reconciledBy set iff lifecycle reason: ${at}`);
  // A failed run says why; a successful one has no reason.
  assert((s.reasonCode !== null) === (s.outcome === "failed"), `reasonCode iff failed: ${at}`);
}

const TERMINAL_ACTIONS = new Set(["run.completed", "run.failed", "run.reconciled"]);

it("any interleaving of attempts, tracker, sweep and dead-letter completes the run exactly once", () => {
  // What the generated histories exercised, so the property cannot pass vacuously.
  const seen = new Map<string, number>();
  const tally = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: MAX_ATTEMPTS }),
      fc.array(commandArb, { maxLength: 16 }),
      fc.constantFrom<Finish>("dead_letter", "sweep_fresh", "tracker_fresh"),
      fc.array(commandArb, { maxLength: 4 }),
      (maxAttempts, commands, finish, afterwards) => {
        let s: RunState = Object.freeze(initialState(maxAttempts));
        const actors: Actors = { trackerSeen: null, sweepSlots: [null, null] };
        let completions = 0;
        let terminalActions = 0;

        const apply = (event: LifecycleEvent): void => {
          const before = s;
          const what = `${JSON.stringify(event)} on ${JSON.stringify(before)}`;
          // `s` is frozen: a decide() that mutated its input would throw here.
          const d = decide(s, event);

          if (before.status === "completed") {
            assert(!d.ok && d.refusal === "terminal", `completed run changed by ${what}`);
          }
          if ("attempt" in event && event.attempt < before.attempt) {
            assert(!d.ok, `older attempt accepted: ${what}`);
            assert(before.status === "completed" || d.refusal === "fenced", `older attempt not fenced: ${what}`);
          }
          tally(d.ok ? `ok:${event.type}` : `${d.refusal}:${event.type}`);
          if (d.ok && d.takeover) tally("takeover");
          if (!d.ok) {
            const isResult = event.type === "result" || event.type === "attempt_failure";
            assert(d.action === (isResult ? "run.late_result_discarded" : null), `refusal action: ${what}`);
            return;
          }

          assert(d.from === before, `transition not decided from the current state: ${what}`);
          assert(d.to.attempt >= before.attempt, `attempt decreased: ${what}`);
          assert(d.takeover === (event.type === "claim" && before.status === "running"), `takeover flag: ${what}`);
          if (event.type === "heartbeat") assert(sameState(d.to, before) && d.action === null, `heartbeat changed the run: ${what}`);
          if (d.to.status === "completed") {
            completions++;
            assert((d.action === "run.reconciled") === (d.to.reconciledBy !== null), `reconciled action: ${what}`);
          }
          if (d.action !== null && TERMINAL_ACTIONS.has(d.action)) terminalActions++;
          checkStateInvariants(d.to, maxAttempts);
          s = Object.freeze(d.to);
        };

        for (const cmd of commands) {
          const event = toEvent(cmd, s, actors);
          if (event) apply(event);
        }
        apply(finishEvent(finish, s));
        for (const cmd of afterwards) {
          const event = toEvent(cmd, s, actors);
          if (event) apply(event);
        }

        assert(s.status === "completed", `did not converge: ${JSON.stringify(s)}`);
        assert(completions === 1, `completed ${completions} times`);
        assert(terminalActions === 1, `${terminalActions} terminal audit events`);
      },
    ),
    { numRuns: 10_000 },
  );
  const kinds = [
    "ok:claim", "takeover", "ok:heartbeat", "ok:result", "ok:attempt_failure", "ok:heartbeat_lost", "ok:reconcile", "ok:dead_letter",
    "terminal:result", "fenced:heartbeat", "fenced:result", "fenced:attempt_failure", "fenced:claim",
    "fenced:heartbeat_lost", "fenced:reconcile", "duplicate:claim", "exhausted:claim",
  ];
  expect(kinds.filter((k) => !seen.has(k))).toEqual([]);
});
