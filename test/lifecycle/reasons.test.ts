// Reason codes (contract section 3): the public vocabulary and its two families.
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
    });
  });

  it.each(REASON_CODES)("%s explains what happened, side effects and what to do", (code) => {
    const e = explainReason(code);
    for (const text of [e.title, e.whatHappened, e.sideEffects, e.whatToDo]) expect(text.trim().length).toBeGreaterThan(0);
  });

  it("isReasonCode accepts only known codes", () => {
    expect(REASON_CODES.every(isReasonCode)).toBe(true);
    for (const v of ["handler.unknown", "", "toString", "__proto__", null, 1, undefined]) expect(isReasonCode(v)).toBe(false);
  });
});
