/** retryDelayMs: when a retryable failure's next attempt is due (the handler's hint, else the policy's delay). */
import { describe, expect, it } from "vitest";
import { MAX_RETRY_DELAY_SECONDS, retryDelayMs } from "../../src/lifecycle";

const policy = { retryDelaySeconds: 5 };

describe("retryDelayMs", () => {
  it("is the policy's retryDelaySeconds without a hint", () => {
    expect(retryDelayMs(policy)).toBe(5_000);
  });

  it("is the handler's hint where it gave one, shorter or longer than the policy's", () => {
    expect(retryDelayMs(policy, 120_000)).toBe(120_000);
    expect(retryDelayMs(policy, 0)).toBe(0);
    expect(retryDelayMs(policy, 1_500.2)).toBe(1_501);
  });

  it("clamps a hint to 0 … 43,200 s, the longest delay a queue message can carry (T4)", () => {
    expect(retryDelayMs(policy, -10)).toBe(0);
    expect(retryDelayMs(policy, 10 ** 12)).toBe(MAX_RETRY_DELAY_SECONDS * 1000);
  });

  it("ignores a hint that is not a finite number", () => {
    expect(retryDelayMs(policy, Number.NaN)).toBe(5_000);
    expect(retryDelayMs(policy, Number.POSITIVE_INFINITY)).toBe(5_000);
  });
});
