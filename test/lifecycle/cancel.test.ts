// Cancel in the pure core (contract sections 2, 6 and 7): the transitions decide() makes for an
// operator's cancel and for whatever ends a Cancelling attempt, and the two display states.
import { describe, expect, it } from "vitest";
import {
  actorName,
  cancelGraceFor,
  decide,
  DEFAULT_SETTINGS,
  displayState,
  initialState,
  type Decision,
  type DisplayInput,
  type LifecycleEvent,
  type RunState,
  type Transition,
} from "../../src/lifecycle";

const run = (overrides: Partial<RunState> = {}): RunState => Object.freeze({ ...initialState(3), ...overrides });
const running = (attempt = 1, cancelRequested = false) => run({ status: "running", attempt, cancelRequested });

function expectOk(d: Decision): Transition {
  if (!d.ok) throw new Error(`expected a transition, got refusal "${d.refusal}"`);
  return d;
}

const CANCELLED = { status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled", reconciledBy: null, cancelRequested: true };

describe("decide: an operator's cancel", () => {
  it("ends a queued run at once, fresh or waiting for a retry", () => {
    for (const queued of [run(), run({ attempt: 1 })]) {
      const t = expectOk(decide(queued, { type: "cancel" }));
      expect(t.action).toBe("run.cancelled");
      expect(t.to).toMatchObject({ ...CANCELLED, attempt: queued.attempt });
    }
  });

  it("marks a running run Cancelling (still running, same attempt); a second cancel is a duplicate", () => {
    const t = expectOk(decide(running(2), { type: "cancel" }));
    expect(t.action).toBe("run.cancel_requested");
    expect(t.to).toMatchObject({ status: "running", outcome: "pending", attempt: 2, cancelRequested: true });
    expect(decide(t.to, { type: "cancel" })).toMatchObject({ ok: false, refusal: "duplicate", action: null });
  });

  it("changes nothing on a terminal run", () => {
    const done = run({ status: "completed", outcome: "succeeded", attempt: 1 });
    expect(decide(done, { type: "cancel" })).toMatchObject({ ok: false, refusal: "terminal" });
  });
});

describe("decide: whatever ends a Cancelling attempt ends the run cancelled", () => {
  const ends: LifecycleEvent[] = [
    { type: "cancel_stopped", attempt: 2 },
    { type: "result", attempt: 2, outcome: "succeeded" },
    { type: "attempt_failure", attempt: 2, retryable: true, reason: "handler.error" },
    { type: "heartbeat_lost", attempt: 2 },
    { type: "reconcile", detector: "sweep", reason: "lifecycle.stale_running", observed: { status: "running", attempt: 2 } },
  ];
  it.each(ends.map((e) => [e.type, e] as const))("%s", (_name, event) => {
    const t = expectOk(decide(running(2, true), event));
    expect(t.action).toBe("run.cancelled");
    expect(t.to).toMatchObject({ ...CANCELLED, attempt: 2 });
  });

  it("an older attempt is fenced; a heartbeat is still a heartbeat; no new attempt is claimed", () => {
    expect(decide(running(2, true), { type: "result", attempt: 1, outcome: "succeeded" })).toMatchObject({ ok: false, refusal: "fenced" });
    expect(decide(running(2, true), { type: "heartbeat", attempt: 2 })).toMatchObject({ ok: true, action: null });
    expect(decide(running(2, true), { type: "claim", attempt: 3 })).toMatchObject({ ok: false, refusal: "fenced" });
  });

  it("without a cancel request, a stop is fenced and the other events keep their own meaning", () => {
    expect(decide(running(1), { type: "cancel_stopped", attempt: 1 })).toMatchObject({ ok: false, refusal: "fenced" });
    expect(expectOk(decide(running(1), { type: "result", attempt: 1, outcome: "succeeded" })).action).toBe("run.completed");
  });
});

describe("display: Cancelling and Cancelled", () => {
  const policy = { heartbeatTimeoutMs: 5_000, staleQueuedAfterMs: 60_000 };
  const now = 1_000_000;
  const base: DisplayInput = {
    status: "running",
    outcome: "pending",
    attempt: 1,
    reasonCode: null,
    reconciledBy: null,
    createdAt: now - 10_000,
    startedAt: now - 9_000,
    lastHeartbeatAt: now - 1_000,
    deadlineAt: now + 60_000,
    cancelRequestedAt: now - 500,
    cancelRequestedBy: "user:ada@acme.test",
  };

  it("a running run with a cancel request is Cancelling, fresh or silent (never Running, never stale-looking work)", () => {
    expect(displayState(base, policy, DEFAULT_SETTINGS, now)).toEqual({ kind: "cancelling", label: "Cancelling", live: true, cancelledBy: "ada@acme.test" });
    const silent = displayState({ ...base, lastHeartbeatAt: now - 60_000 }, policy, DEFAULT_SETTINGS, now);
    expect(silent).toMatchObject({ kind: "cancelling", live: false });
    expect(displayState({ ...base, cancelRequestedAt: null, cancelRequestedBy: null }, policy, DEFAULT_SETTINGS, now).kind).toBe("running");
  });

  it("a cancelled run says who cancelled it", () => {
    const done = { ...base, status: "completed", outcome: "cancelled", reasonCode: "operator.cancelled", deadlineAt: null } as const;
    expect(displayState(done, policy, DEFAULT_SETTINGS, now)).toEqual({ kind: "cancelled", label: "Cancelled by ada@acme.test", live: false, cancelledBy: "ada@acme.test" });
    expect(displayState({ ...done, cancelRequestedBy: "api-token:CI deploy" }, policy, DEFAULT_SETTINGS, now).label).toBe("Cancelled by API token CI deploy");
  });

  it("actorName reads actors as people do", () => {
    expect(actorName("user:ada@acme.test")).toBe("ada@acme.test");
    expect(actorName("api-token:CI")).toBe("API token CI");
    expect(actorName("system:tracker")).toBe("system:tracker");
  });
});

describe("the cancel grace", () => {
  it("is the setting, but never under two heartbeat intervals", () => {
    expect(cancelGraceFor({ heartbeatIntervalMs: 1_000 }, { cancelGraceMs: 30_000 })).toBe(30_000);
    expect(cancelGraceFor({ heartbeatIntervalMs: 20_000 }, { cancelGraceMs: 30_000 })).toBe(40_000);
  });
});
