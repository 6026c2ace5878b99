/** The retry schedule (src/webhooks/schedule.ts): doubling from the base, jitter within ±20 %, capped at the queue's 12 h. */
import { describe, expect, it } from "vitest";
import { hasTriesLeft, MAX_QUEUE_DELAY_SECONDS, retryDelaySeconds } from "../../src/webhooks/schedule";

describe("retryDelaySeconds", () => {
  it("doubles per failed try from the base (jitter factor 1 at random = 0.5)", () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelaySeconds(n, 5, () => 0.5))).toEqual([5, 10, 20, 40, 80]);
  });

  it("jitter stays within [0.8, 1.2) of the exponential delay", () => {
    expect(retryDelaySeconds(3, 10, () => 0)).toBe(32);
    expect(retryDelaySeconds(3, 10, () => 0.999999)).toBe(48);
  });

  it("never exceeds the queue's longest delay, nor goes below 1 s", () => {
    expect(retryDelaySeconds(40, 5, () => 0.999)).toBe(MAX_QUEUE_DELAY_SECONDS);
    expect(MAX_QUEUE_DELAY_SECONDS).toBe(43_200);
    expect(retryDelaySeconds(1, 1, () => 0)).toBe(1);
  });

  it("refuses a try count below 1", () => {
    expect(() => retryDelaySeconds(0, 5)).toThrow(RangeError);
  });

  it("with the defaults (5 s, 15 tries) the retries span about a day", () => {
    const total = Array.from({ length: 14 }, (_, i) => retryDelaySeconds(i + 1, 5, () => 0.5)).reduce((a, b) => a + b, 0);
    expect(total / 3600).toBeGreaterThan(20);
    expect(total / 3600).toBeLessThan(30);
  });
});

describe("hasTriesLeft", () => {
  it("is true below the maximum only", () => {
    expect(hasTriesLeft(14, 15)).toBe(true);
    expect(hasTriesLeft(15, 15)).toBe(false);
  });
});
