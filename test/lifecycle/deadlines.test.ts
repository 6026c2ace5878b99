// Deadlines (contract section 4): what the sweep reads from D1 and what the tracker arms.
import { describe, expect, it } from "vitest";
import { heartbeatDeadline, storedDeadline } from "../../src/lifecycle";

const policy = { staleQueuedAfterMs: 120_000, staleRunningAfterMs: 90_000, heartbeatTimeoutMs: 5_000 };
const T0 = Date.UTC(2026, 0, 1);

describe("storedDeadline", () => {
  it("queued: creation (or the retry's due time) + staleQueuedAfterMs", () => {
    expect(storedDeadline({ status: "queued", queuedSince: T0, lastFlushedHeartbeatAt: null }, policy)).toBe(T0 + 120_000);
    // A heartbeat left over from an earlier attempt does not move a queued run's deadline.
    expect(storedDeadline({ status: "queued", queuedSince: T0 + 5_000, lastFlushedHeartbeatAt: T0 + 9_000 }, policy)).toBe(
      T0 + 125_000,
    );
  });

  it("running: last flushed heartbeat + staleRunningAfterMs", () => {
    expect(storedDeadline({ status: "running", queuedSince: T0, lastFlushedHeartbeatAt: T0 + 30_000 }, policy)).toBe(
      T0 + 120_000,
    );
  });

  it("running with no flushed heartbeat yet counts from queuedSince", () => {
    expect(storedDeadline({ status: "running", queuedSince: T0, lastFlushedHeartbeatAt: null }, policy)).toBe(T0 + 90_000);
  });

  it("completed: no deadline", () => {
    expect(storedDeadline({ status: "completed", queuedSince: T0, lastFlushedHeartbeatAt: T0 }, policy)).toBeNull();
  });
});

describe("heartbeatDeadline", () => {
  it("is the last heartbeat + heartbeatTimeoutMs", () => {
    expect(heartbeatDeadline(T0 + 1_000, policy)).toBe(T0 + 6_000);
  });
});
