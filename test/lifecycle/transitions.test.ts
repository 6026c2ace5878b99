// The transition table of the contract (section 2), row by row, through decide().
import { describe, expect, it } from "vitest";
import {
  decide,
  initialState,
  type Decision,
  type ExecutionReasonCode,
  type FinalOutcome,
  type LifecycleEvent,
  type RunState,
  type Transition,
} from "../../src/lifecycle";

/** A frozen run state: decide() must never mutate what it was given (strict mode throws if it tries). */
function run(overrides: Partial<RunState> = {}): RunState {
  return Object.freeze({ ...initialState(3), ...overrides });
}

const queued0 = run();
const running = (attempt: number, maxAttempts = 3) => run({ status: "running", attempt, maxAttempts });
const queuedAt = (attempt: number, maxAttempts = 3) => run({ status: "queued", attempt, maxAttempts });

function expectOk(d: Decision): Transition {
  if (!d.ok) throw new Error(`expected a transition, got refusal "${d.refusal}"`);
  return d;
}

describe("initialState", () => {
  it("is queued at attempt 0 with nothing decided yet", () => {
    expect(initialState(4)).toEqual({
      status: "queued",
      outcome: "pending",
      attempt: 0,
      maxAttempts: 4,
      reasonCode: null,
      reconciledBy: null,
    });
  });

  it.each([0, -1, 1.5, Number.NaN])("rejects maxAttempts %s", (n) => {
    expect(() => initialState(n)).toThrow(RangeError);
  });
});

describe("queued → running: claim", () => {
  it.each([
    { from: queued0, attempt: 1 },
    { from: queuedAt(1), attempt: 2 },
    // A delivery count may skip numbers (e.g. a redelivery whose claim was never written).
    { from: queuedAt(1), attempt: 3 },
  ])("claim $attempt from queued attempt $from.attempt starts that attempt", ({ from, attempt }) => {
    const t = expectOk(decide(from, { type: "claim", attempt }));
    expect(t.to).toEqual({ ...from, status: "running", attempt });
    expect(t.action).toBe("run.attempt_started");
    expect(t.takeover).toBe(false);
    expect(t.from).toBe(from);
  });

  it("a claim with a higher attempt while running takes over and fences the older attempt", () => {
    const from = running(1);
    const t = expectOk(decide(from, { type: "claim", attempt: 2 }));
    expect(t.to).toMatchObject({ status: "running", attempt: 2, outcome: "pending" });
    expect(t.action).toBe("run.attempt_started");
    expect(t.takeover).toBe(true);
    // The older attempt is fenced from then on.
    expect(decide(t.to, { type: "heartbeat", attempt: 1 })).toMatchObject({ ok: false, refusal: "fenced" });
  });
});

describe("running: heartbeat from the lease holder", () => {
  it("changes nothing and emits no audit event", () => {
    const from = running(2);
    const t = expectOk(decide(from, { type: "heartbeat", attempt: 2 }));
    expect(t.to).toEqual(from);
    expect(t.action).toBeNull();
    expect(t.takeover).toBe(false);
  });
});

describe("running → completed: result", () => {
  it.each<{ outcome: FinalOutcome; reasonCode: RunState["reasonCode"] }>([
    { outcome: "succeeded", reasonCode: null },
    { outcome: "partially_succeeded", reasonCode: null },
    { outcome: "failed", reasonCode: "handler.failed" },
  ])("result $outcome completes with reason $reasonCode", ({ outcome, reasonCode }) => {
    const from = running(1);
    const t = expectOk(decide(from, { type: "result", attempt: 1, outcome }));
    expect(t.to).toEqual({ ...from, status: "completed", outcome, reasonCode, reconciledBy: null });
    expect(t.action).toBe("run.completed");
  });
});

describe("running: attempt failure", () => {
  it("retryable with attempts left goes back to queued at the same attempt", () => {
    const from = running(2, 3);
    const t = expectOk(decide(from, { type: "attempt_failure", attempt: 2, retryable: true, reason: "handler.error" }));
    expect(t.to).toEqual({ ...from, status: "queued" });
    expect(t.to.outcome).toBe("pending");
    expect(t.to.reasonCode).toBeNull();
    expect(t.action).toBe("run.attempt_failed");
  });

  it.each<{ name: string; attempt: number; retryable: boolean; reason: ExecutionReasonCode }>([
    { name: "not retryable, attempts left", attempt: 1, retryable: false, reason: "handler.error" },
    { name: "retryable, none left", attempt: 3, retryable: true, reason: "handler.error" },
    { name: "timeout, none left", attempt: 3, retryable: true, reason: "attempt.timeout" },
    { name: "invalid input", attempt: 1, retryable: false, reason: "input.invalid" },
    { name: "unknown type", attempt: 1, retryable: false, reason: "operation.unknown_type" },
  ])("$name → completed/failed with the given reason", ({ attempt, retryable, reason }) => {
    const from = running(attempt, 3);
    const t = expectOk(decide(from, { type: "attempt_failure", attempt, retryable, reason }));
    expect(t.to).toEqual({ ...from, status: "completed", outcome: "failed", reasonCode: reason, reconciledBy: null });
    expect(t.action).toBe("run.failed");
  });
});

describe("running: heartbeat lost", () => {
  it("with attempts left, the run awaits redelivery", () => {
    const from = running(1, 2);
    const t = expectOk(decide(from, { type: "heartbeat_lost", attempt: 1 }));
    expect(t.to).toEqual({ ...from, status: "queued" });
    expect(t.action).toBe("run.attempt_lost");
  });

  it("with none left, the tracker reconciles it as lifecycle.heartbeat_lost", () => {
    const from = running(2, 2);
    const t = expectOk(decide(from, { type: "heartbeat_lost", attempt: 2 }));
    expect(t.to).toEqual({
      ...from,
      status: "completed",
      outcome: "failed",
      reasonCode: "lifecycle.heartbeat_lost",
      reconciledBy: "tracker_alarm",
    });
    expect(t.action).toBe("run.reconciled");
  });
});

describe("queued/running → completed: reconciliation", () => {
  it.each([
    { from: queued0, detector: "sweep", reason: "lifecycle.stale_queued" },
    { from: queued0, detector: "tracker_alarm", reason: "lifecycle.stale_queued" },
    { from: queuedAt(2), detector: "sweep", reason: "lifecycle.stale_queued" },
    { from: running(1), detector: "sweep", reason: "lifecycle.stale_running" },
    { from: running(3), detector: "tracker_alarm", reason: "lifecycle.stale_running" },
  ] as const)("$detector with a matching observation of $from.status/$from.attempt → $reason", ({ from, detector, reason }) => {
    const status = from.status === "running" ? "running" : "queued";
    const t = expectOk(
      decide(from, { type: "reconcile", detector, reason, observed: { status, attempt: from.attempt } }),
    );
    expect(t.to).toEqual({ ...from, status: "completed", outcome: "failed", reasonCode: reason, reconciledBy: detector });
    expect(t.action).toBe("run.reconciled");
  });

  it.each([queued0, running(2)])("dead_letter from $status → queue.max_attempts_exceeded", (from) => {
    const t = expectOk(decide(from, { type: "dead_letter" }));
    expect(t.to).toEqual({
      ...from,
      status: "completed",
      outcome: "failed",
      reasonCode: "queue.max_attempts_exceeded",
      reconciledBy: "dead_letter",
    });
    expect(t.action).toBe("run.reconciled");
  });
});

describe("refusals", () => {
  const completedRuns = [
    run({ status: "completed", outcome: "succeeded", attempt: 1 }),
    run({ status: "completed", outcome: "failed", attempt: 2, reasonCode: "lifecycle.stale_running", reconciledBy: "sweep" }),
  ];
  const everyEvent: { event: LifecycleEvent; action: "run.late_result_discarded" | null }[] = [
    { event: { type: "claim", attempt: 3 }, action: null },
    { event: { type: "heartbeat", attempt: 1 }, action: null },
    { event: { type: "result", attempt: 1, outcome: "succeeded" }, action: "run.late_result_discarded" },
    { event: { type: "result", attempt: 2, outcome: "failed" }, action: "run.late_result_discarded" },
    {
      event: { type: "attempt_failure", attempt: 1, retryable: true, reason: "handler.error" },
      action: "run.late_result_discarded",
    },
    { event: { type: "heartbeat_lost", attempt: 2 }, action: null },
    {
      event: { type: "reconcile", detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 2 } },
      action: null,
    },
    { event: { type: "dead_letter" }, action: null },
  ];

  describe("terminal: a completed run never changes", () => {
    const cases = completedRuns.flatMap((from) => everyEvent.map((e) => ({ ...e, from, label: `${from.outcome}: ${e.event.type}` })));
    it.each(cases)("$label", ({ from, event, action }) => {
      expect(decide(from, event)).toEqual({ ok: false, refusal: "terminal", action });
    });
  });

  describe("fenced: the sender no longer holds the lease", () => {
    it.each<{ name: string; from: RunState; event: LifecycleEvent; action: "run.late_result_discarded" | null }>([
      { name: "heartbeat from an older attempt", from: running(2), event: { type: "heartbeat", attempt: 1 }, action: null },
      {
        name: "result from an older attempt",
        from: running(2),
        event: { type: "result", attempt: 1, outcome: "succeeded" },
        action: "run.late_result_discarded",
      },
      {
        name: "failure from an older attempt",
        from: running(2),
        event: { type: "attempt_failure", attempt: 1, retryable: false, reason: "handler.error" },
        action: "run.late_result_discarded",
      },
      { name: "heartbeat_lost for an older attempt", from: running(2), event: { type: "heartbeat_lost", attempt: 1 }, action: null },
      { name: "claim with a lower attempt", from: running(2), event: { type: "claim", attempt: 1 }, action: null },
      { name: "claim with a lower attempt while queued", from: queuedAt(2), event: { type: "claim", attempt: 1 }, action: null },
      { name: "heartbeat from attempt n after it was requeued", from: queuedAt(1), event: { type: "heartbeat", attempt: 1 }, action: null },
      {
        name: "result from attempt n after it was requeued",
        from: queuedAt(1),
        event: { type: "result", attempt: 1, outcome: "succeeded" },
        action: "run.late_result_discarded",
      },
      { name: "heartbeat_lost after it was requeued", from: queuedAt(1), event: { type: "heartbeat_lost", attempt: 1 }, action: null },
      { name: "heartbeat from a future attempt", from: running(1), event: { type: "heartbeat", attempt: 2 }, action: null },
      {
        name: "reconcile that observed queued, run now running",
        from: running(1),
        event: { type: "reconcile", detector: "tracker_alarm", reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 } },
        action: null,
      },
      {
        name: "reconcile that observed an older running attempt",
        from: running(2),
        event: { type: "reconcile", detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 } },
        action: null,
      },
      {
        name: "reconcile that observed running, attempt since requeued",
        from: queuedAt(1),
        event: { type: "reconcile", detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 } },
        action: null,
      },
    ])("$name", ({ from, event, action }) => {
      expect(decide(from, event)).toEqual({ ok: false, refusal: "fenced", action });
    });
  });

  it.each([running(1), queuedAt(1)])("duplicate: a second claim of attempt 1 while $status", (from) => {
    expect(decide(from, { type: "claim", attempt: 1 })).toEqual({ ok: false, refusal: "duplicate", action: null });
  });

  it.each([
    { from: running(3, 3), attempt: 4 },
    { from: queuedAt(1, 2), attempt: 3 },
    { from: queued0, attempt: 4 },
  ])("exhausted: claim $attempt beyond maxAttempts $from.maxAttempts", ({ from, attempt }) => {
    expect(decide(from, { type: "claim", attempt })).toEqual({ ok: false, refusal: "exhausted", action: null });
  });
});

describe("invalid attempt numbers", () => {
  const bad = [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY];
  const makers: ((attempt: number) => LifecycleEvent)[] = [
    (attempt) => ({ type: "claim", attempt }),
    (attempt) => ({ type: "heartbeat", attempt }),
    (attempt) => ({ type: "result", attempt, outcome: "succeeded" }),
    (attempt) => ({ type: "attempt_failure", attempt, retryable: true, reason: "handler.error" }),
    (attempt) => ({ type: "heartbeat_lost", attempt }),
  ];
  const cases = makers.flatMap((make) => bad.map((attempt) => ({ event: make(attempt), label: `${make(1).type} ${attempt}` })));

  it.each(cases)("$label throws RangeError", ({ event }) => {
    expect(() => decide(running(1), event)).toThrow(RangeError);
    // Even on a terminal run: a malformed event is a programming error, not a late result.
    expect(() => decide(run({ status: "completed", outcome: "succeeded", attempt: 1 }), event)).toThrow(RangeError);
  });

  it.each([
    ["lifecycle.stale_queued", "running"],
    ["lifecycle.stale_running", "queued"],
  ] as const)("a reconcile with %s of an observed %s run throws RangeError", (reason, status) => {
    const event: LifecycleEvent = { type: "reconcile", detector: "sweep", reason, observed: { status, attempt: 1 } };
    expect(() => decide(running(1), event)).toThrow(RangeError);
  });

  it("a reconcile may observe attempt 0 (a run never claimed)", () => {
    const d = decide(queued0, { type: "reconcile", detector: "sweep", reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 } });
    expect(d.ok).toBe(true);
  });
});
