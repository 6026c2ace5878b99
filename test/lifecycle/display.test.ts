// displayState for every row of contract section 6: a stale run never looks like healthy activity.
import { describe, expect, it } from "vitest";
import {
  DETECTORS,
  displayState,
  formatDuration,
  REASON_CODES,
  reasonFamily,
  type DisplayInput,
  type DisplayState,
  type ReasonCode,
} from "../../src/lifecycle";

const T0 = Date.UTC(2026, 0, 1);
const policy = { heartbeatTimeoutMs: 5_000, staleQueuedAfterMs: 120_000 };
const settings = { heartbeatFlushIntervalMs: 5_000 };
/** Running turns stale only after heartbeatTimeoutMs + one flush interval of silence. */
const STALE_AFTER = policy.heartbeatTimeoutMs + settings.heartbeatFlushIntervalMs;

function input(overrides: Partial<DisplayInput>): DisplayInput {
  return {
    status: "queued",
    outcome: "pending",
    attempt: 0,
    reasonCode: null,
    reconciledBy: null,
    createdAt: T0,
    startedAt: null,
    lastHeartbeatAt: null,
    deadlineAt: T0 + policy.staleQueuedAfterMs,
    ...overrides,
  };
}

const runningSince = (lastHeartbeatAt: number | null) =>
  input({ status: "running", attempt: 1, startedAt: T0 + 1_000, lastHeartbeatAt, deadlineAt: null });

const show = (run: DisplayInput, now: number, p: typeof policy | null = policy): DisplayState =>
  displayState(run, p, settings, now);

describe("queued", () => {
  it("before its deadline: Queued, live", () => {
    expect(show(input({}), T0 + 60_000)).toEqual({ kind: "queued", label: "Queued", live: true });
    // At the deadline itself it is not yet overdue.
    expect(show(input({}), T0 + 120_000).kind).toBe("queued");
  });

  it("past its deadline: Queued · overdue, not live, by how much", () => {
    expect(show(input({}), T0 + 120_001)).toEqual({
      kind: "queued_overdue",
      label: "Queued · overdue",
      live: false,
      overdueByMs: 1,
    });
  });

  it("uses the stored deadline over createdAt", () => {
    const retried = input({ deadlineAt: T0 + 500_000 });
    expect(show(retried, T0 + 300_000).kind).toBe("queued");
    expect(show(retried, T0 + 500_001).kind).toBe("queued_overdue");
  });

  it("without a stored deadline, falls back to createdAt + staleQueuedAfterMs", () => {
    const run = input({ deadlineAt: null });
    expect(show(run, T0 + 120_000).kind).toBe("queued");
    expect(show(run, T0 + 120_001)).toMatchObject({ kind: "queued_overdue", overdueByMs: 1 });
  });
});

describe("retrying: queued again after an attempt failed or was lost", () => {
  // Attempt 1 failed at T0 + 30 s; the retry is due 5 s later, so the stored deadline is due + staleQueuedAfterMs.
  const dueAt = T0 + 35_000;
  const waiting = (overrides: Partial<DisplayInput> = {}) =>
    input({ attempt: 1, startedAt: T0 + 1_000, deadlineAt: dueAt + policy.staleQueuedAfterMs, ...overrides });

  it("before its deadline: Retrying, live, with the attempt and when the next one is due", () => {
    expect(show(waiting(), T0 + 31_000)).toEqual({
      kind: "retrying",
      label: "Retrying",
      live: true,
      retry: { afterAttempt: 1, dueAt },
    });
  });

  it("never reads as fresh Queued, even once the next attempt is due and not yet claimed", () => {
    for (const now of [T0 + 31_000, dueAt, dueAt + 60_000, dueAt + policy.staleQueuedAfterMs]) {
      expect(show(waiting(), now).kind, `at ${now - T0} ms`).toBe("retrying");
    }
  });

  it("a lost attempt re-dispatched at once (due = when it was lost) is Retrying too", () => {
    const lostAt = T0 + 50_000;
    const lost = waiting({ attempt: 2, deadlineAt: lostAt + policy.staleQueuedAfterMs });
    expect(show(lost, lostAt + 1_000)).toMatchObject({ kind: "retrying", retry: { afterAttempt: 2, dueAt: lostAt } });
  });

  it("the run's own stale-queued threshold wins over the policy's for the due time", () => {
    const own = 300_000;
    const run = waiting({ deadlineAt: dueAt + own, staleQueuedAfterMs: own });
    expect(show(run, T0 + 31_000).retry).toEqual({ afterAttempt: 1, dueAt });
    // With the policy's threshold the due time would be 180 s later: the run's own is what made its deadline.
    expect(show({ ...run, staleQueuedAfterMs: null }, T0 + 31_000).retry?.dueAt).toBe(dueAt + own - policy.staleQueuedAfterMs);
  });

  it("without any threshold (type gone, none recorded), the due time is unknown", () => {
    expect(show(waiting(), T0 + 31_000, null)).toMatchObject({ kind: "retrying", retry: { afterAttempt: 1, dueAt: null } });
  });

  it("past its deadline: Queued · overdue like any queued run, not Retrying", () => {
    expect(show(waiting(), dueAt + policy.staleQueuedAfterMs + 1)).toMatchObject({ kind: "queued_overdue", live: false, overdueByMs: 1 });
  });
});

describe("running", () => {
  const hb = T0 + 10_000;

  it("heartbeat fresh: Running, live", () => {
    expect(show(runningSince(hb), hb + 2_000)).toEqual({ kind: "running", label: "Running", live: true });
  });

  it("just inside the threshold is still fresh", () => {
    expect(show(runningSince(hb), hb + STALE_AFTER).kind).toBe("running");
  });

  it("just outside the threshold is stale", () => {
    expect(show(runningSince(hb), hb + STALE_AFTER + 1)).toEqual({
      kind: "running_stale",
      label: "Running · no heartbeat for 10 s",
      live: false,
      overdueByMs: 1,
    });
  });

  it("a heartbeat older than heartbeatTimeoutMs alone is not yet stale (the D1 copy lags one flush)", () => {
    expect(show(runningSince(hb), hb + policy.heartbeatTimeoutMs + 1).kind).toBe("running");
  });

  it("says how long the heartbeat has been silent", () => {
    expect(show(runningSince(hb), hb + 42_000).label).toBe("Running · no heartbeat for 42 s");
    expect(show(runningSince(hb), hb + 3 * 60_000 + 5_000).label).toBe("Running · no heartbeat for 3 min");
  });

  it("with no heartbeat yet, counts from startedAt", () => {
    const run = runningSince(null);
    expect(show(run, T0 + 1_000 + STALE_AFTER).kind).toBe("running");
    expect(show(run, T0 + 1_000 + STALE_AFTER + 1).kind).toBe("running_stale");
  });

  it("with a null policy (type removed by a deploy), is stale even with a fresh heartbeat", () => {
    const d = show(runningSince(hb), hb + 1_000, null);
    expect(d.kind).toBe("running_stale");
    expect(d.live).toBe(false);
    expect(d.label).toBe("Running · no heartbeat for 1 s");
  });
});

describe("completed", () => {
  const completed = (overrides: Partial<DisplayInput>) =>
    input({ status: "completed", deadlineAt: null, startedAt: T0 + 1_000, ...overrides });

  it("succeeded", () => {
    expect(show(completed({ outcome: "succeeded" }), T0)).toEqual({ kind: "succeeded", label: "Succeeded", live: false });
  });

  it("partially succeeded", () => {
    expect(show(completed({ outcome: "partially_succeeded" }), T0)).toEqual({
      kind: "partially_succeeded",
      label: "Partially succeeded",
      live: false,
    });
  });

  const executionReasons = REASON_CODES.filter((c) => reasonFamily(c) === "execution");
  const lifecycleReasons = REASON_CODES.filter((c) => reasonFamily(c) === "lifecycle");

  it.each(executionReasons)("failed with %s (execution family): Failed", (reasonCode) => {
    expect(show(completed({ outcome: "failed", reasonCode }), T0)).toEqual({ kind: "failed", label: "Failed", live: false });
  });

  const detectorLabel = { tracker_alarm: "tracker", sweep: "sweep", dead_letter: "dead-letter" } as const;
  const reconciled = lifecycleReasons.flatMap((reasonCode: ReasonCode) =>
    DETECTORS.map((detector) => ({ reasonCode, detector, label: `Failed · reconciled by ${detectorLabel[detector]}` })),
  );

  it.each(reconciled)("failed with $reasonCode by $detector: $label", ({ reasonCode, detector, label }) => {
    expect(show(completed({ outcome: "failed", reasonCode, reconciledBy: detector }), T0)).toEqual({
      kind: "failed_reconciled",
      label,
      live: false,
      detector,
    });
  });

  it("a lifecycle reason without a recorded detector is still shown as reconciled", () => {
    expect(show(completed({ outcome: "failed", reasonCode: "lifecycle.stale_queued" }), T0)).toEqual({
      kind: "failed_reconciled",
      label: "Failed · reconciled",
      live: false,
    });
  });

  it("there is one lifecycle row per contract reason", () => {
    expect([...lifecycleReasons].sort()).toEqual([
      "lifecycle.heartbeat_lost",
      "lifecycle.stale_queued",
      "lifecycle.stale_running",
      "queue.max_attempts_exceeded",
    ]);
  });
});

describe("no stale or finished run is live", () => {
  it("only queued or retrying in time and running-fresh are live, whatever the clock", () => {
    const runs: DisplayInput[] = [
      input({}),
      input({ attempt: 1, deadlineAt: T0 + 40_000 + policy.staleQueuedAfterMs }),
      runningSince(T0 + 10_000),
      runningSince(null),
      input({ status: "completed", outcome: "succeeded", deadlineAt: null }),
      input({ status: "completed", outcome: "failed", reasonCode: "lifecycle.heartbeat_lost", reconciledBy: "tracker_alarm", deadlineAt: null }),
    ];
    const kinds = new Set<string>();
    for (const run of runs) {
      for (let now = T0 + 10_000; now <= T0 + 200_000; now += 2_500) {
        for (const p of [policy, null]) {
          const d = show(run, now, p);
          kinds.add(d.kind);
          expect(d.live).toBe(d.kind === "queued" || d.kind === "retrying" || d.kind === "running");
          if (d.kind === "queued_overdue" || d.kind === "running_stale") expect(d.overdueByMs).toBeGreaterThanOrEqual(0);
        }
      }
    }
    // The sweep above actually reached both stale kinds.
    expect(kinds).toContain("queued_overdue");
    expect(kinds).toContain("running_stale");
    expect(kinds).toContain("retrying");
  });
});

describe("formatDuration", () => {
  it.each([
    [0, "0 s"],
    [999, "0 s"],
    [42_000, "42 s"],
    [59_999, "59 s"],
    [60_000, "1 min"],
    [3 * 60_000 + 59_000, "3 min"],
    [59 * 60_000, "59 min"],
    [60 * 60_000, "1 h"],
    [47 * 3_600_000, "47 h"],
    [48 * 3_600_000, "2 d"],
    [5 * 86_400_000, "5 d"],
    [-5_000, "0 s"],
  ])("%d ms → %s", (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
  });
});
