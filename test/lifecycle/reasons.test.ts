// Reason codes (contract section 3): the public vocabulary and its three families.
import { describe, expect, it } from "vitest";
import { explainReason, isReasonCode, REASON_CODES, reasonFamily } from "../../src/lifecycle";

describe("reason codes", () => {
  it("are exactly the contract's codes, in their families", () => {
    expect(Object.fromEntries(REASON_CODES.map((c) => [c, reasonFamily(c)]))).toEqual({
      "handler.failed": "execution",
      "handler.error": "execution",
      "attempt.timeout": "execution",
      "input.invalid": "execution",
      "operation.unknown_type": "execution",
      "lifecycle.stale_queued": "lifecycle",
      "lifecycle.heartbeat_lost": "lifecycle",
      "lifecycle.stale_running": "lifecycle",
      "queue.max_attempts_exceeded": "lifecycle",
      "operator.cancelled": "operator",
    });
  });

  it.each(REASON_CODES)("%s explains what happened, side effects and what to do", (code) => {
    const e = explainReason(code);
    for (const text of [e.title, e.whatHappened, e.sideEffects, e.whatToDo]) expect(text.trim().length).toBeGreaterThan(0);
  });

  it("stale_queued after attempts ran does not claim that nothing ran", () => {
    const never = explainReason("lifecycle.stale_queued", { attempt: 0 });
    const after = explainReason("lifecycle.stale_queued", { attempt: 2 });
    expect(never.sideEffects).toMatch(/No attempt ran/);
    expect(after.whatHappened).not.toMatch(/without any attempt starting/);
    expect(after.sideEffects).toMatch(/Earlier attempts ran/);
    expect(after.family).toBe("lifecycle");
    // Other codes do not depend on the attempt count.
    expect(explainReason("lifecycle.stale_running", { attempt: 2 })).toBe(explainReason("lifecycle.stale_running"));
  });

  it("isReasonCode accepts only known codes", () => {
    expect(REASON_CODES.every(isReasonCode)).toBe(true);
    for (const v of ["handler.unknown", "", "toString", "__proto__", null, 1, undefined]) expect(isReasonCode(v)).toBe(false);
  });
});
