// The timing contract (contract section 5): each rule T1–T9 broken in turn, and the real config passing.
import { describe, expect, it } from "vitest";
import {
  assertTimingContract,
  checkTimingContract,
  DEFAULT_SETTINGS,
  deploymentFromWranglerConfig,
  describeViolation,
  QUEUE_DEFAULTS,
  RULES,
  TimingContractViolation,
  type ContractCheck,
  type ContractReport,
  type LifecyclePolicy,
  type RuleId,
  type WranglerConfigLike,
} from "../../src/lifecycle";
import { DEPLOYMENT } from "../../src/generated/deployment";
import { registeredPolicies } from "../../src/operations";

const TYPE = "test.op";

/** A policy that satisfies every rule against `wrangler()` with DEFAULT_SETTINGS, each with head-room. */
function policy(overrides: Partial<LifecyclePolicy> = {}): LifecyclePolicy {
  return {
    timeoutMs: 300_000,
    expectedRuntimeMs: 60_000,
    heartbeatIntervalMs: 1_000,
    heartbeatTimeoutMs: 5_000,
    staleQueuedAfterMs: 120_000,
    staleRunningAfterMs: 90_000,
    maxAttempts: 3,
    retryDelaySeconds: 5,
    queue: "work",
    ...overrides,
  };
}

type Consumer = NonNullable<NonNullable<WranglerConfigLike["queues"]>["consumers"]>[number];

/** Shaped like what wrangler's config reader returns for wrangler.toml. */
function wrangler(opts: { work?: Partial<Consumer>; dlqConsumer?: boolean; crons?: string[] } = {}): WranglerConfigLike {
  const consumers: Consumer[] = [
    { queue: "work", max_retries: 2, retry_delay: 5, max_batch_timeout: 2, dead_letter_queue: "work-dlq", ...opts.work },
  ];
  if (opts.dlqConsumer !== false) consumers.push({ queue: "work-dlq", max_retries: 5 });
  return {
    queues: { consumers, producers: [{ queue: "work", binding: "WORK_QUEUE" }, { queue: "work-dlq", binding: "WORK_DLQ" }] },
    triggers: { crons: opts.crons ?? ["* * * * *"] },
  };
}

function report(p: LifecyclePolicy, config: WranglerConfigLike = wrangler()): ContractReport {
  return checkTimingContract({ [TYPE]: p }, deploymentFromWranglerConfig(config), DEFAULT_SETTINGS);
}

/** The only violation of a report, checked to be of `rule`. */
function onlyViolation(r: ContractReport, rule: RuleId): ContractCheck {
  expect(r.ok).toBe(false);
  expect(r.violations.map((v) => v.rule)).toEqual([rule]);
  return r.violations[0]!;
}

/** The violation names the rule, the type and both numbers. */
function expectDescribed(v: ContractCheck, left: number, right: number): void {
  expect(v.left.value).toBe(left);
  expect(v.right.value).toBe(right);
  const line = describeViolation(v);
  expect(line).toContain(v.rule);
  expect(line).toContain(v.type);
  expect(line).toContain(`(${left})`);
  expect(line).toContain(`(${right})`);
}

describe("deploymentFromWranglerConfig", () => {
  it("maps consumers, producers and crons", () => {
    expect(deploymentFromWranglerConfig(wrangler())).toEqual({
      queueConsumers: [
        { queue: "work", maxRetries: 2, retryDelaySeconds: 5, maxBatchSize: 10, maxBatchTimeoutSeconds: 2, deadLetterQueue: "work-dlq" },
        { queue: "work-dlq", maxRetries: 5, retryDelaySeconds: null, maxBatchSize: 10, maxBatchTimeoutSeconds: 5, deadLetterQueue: null },
      ],
      queueProducers: [
        { queue: "work", binding: "WORK_QUEUE" },
        { queue: "work-dlq", binding: "WORK_DLQ" },
      ],
      crons: ["* * * * *"],
    });
  });

  it("falls back to Cloudflare's defaults where the config is silent or null", () => {
    const d = deploymentFromWranglerConfig({
      queues: {
        consumers: [{ queue: "q", max_retries: null, retry_delay: null, max_batch_size: null, max_batch_timeout: null, dead_letter_queue: null }],
      },
      triggers: { crons: null },
    });
    expect(d.queueConsumers).toEqual([
      {
        queue: "q",
        maxRetries: QUEUE_DEFAULTS.maxRetries,
        retryDelaySeconds: null,
        maxBatchSize: QUEUE_DEFAULTS.maxBatchSize,
        maxBatchTimeoutSeconds: QUEUE_DEFAULTS.maxBatchTimeoutSeconds,
        deadLetterQueue: null,
      },
    ]);
    expect(QUEUE_DEFAULTS).toEqual({ maxRetries: 3, maxBatchSize: 10, maxBatchTimeoutSeconds: 5 });
    expect(d.crons).toEqual([]);
    expect(deploymentFromWranglerConfig({})).toEqual({ queueConsumers: [], queueProducers: [], crons: [] });
  });
});

describe("checkTimingContract", () => {
  it("a valid policy and deployment pass with zero violations", () => {
    const r = report(policy());
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
    // Every rule was actually checked (T4 twice: the maximum and the queue's retry_delay).
    expect(r.checks.map((c) => c.rule).sort()).toEqual(["T1", "T2", "T3", "T4", "T4", "T5", "T6", "T7", "T8", "T9"]);
    expect(r.checks.every((c) => c.ok && c.type === TYPE)).toBe(true);
    expect(() => assertTimingContract(r)).not.toThrow();
  });

  it("the registered policies pass against the committed deployment", () => {
    const r = checkTimingContract(registeredPolicies(), DEPLOYMENT, DEFAULT_SETTINGS);
    expect(r.violations.map(describeViolation)).toEqual([]);
    expect(Object.keys(registeredPolicies())).toContain("demo.work");
  });

  it("T1: timeoutMs + safety margin above the consumer wall-clock limit", () => {
    // 880 000 + 30 000 = 910 000 > 900 000
    expectDescribed(onlyViolation(report(policy({ timeoutMs: 880_000 })), "T1"), 910_000, 900_000);
  });

  it("T1: exactly at the limit holds", () => {
    expect(report(policy({ timeoutMs: 870_000 })).ok).toBe(true);
  });

  it("T2: heartbeatTimeoutMs below 3 × heartbeatIntervalMs", () => {
    expectDescribed(onlyViolation(report(policy({ heartbeatTimeoutMs: 2_999 })), "T2"), 2_999, 3_000);
    expect(report(policy({ heartbeatTimeoutMs: 3_000 })).ok).toBe(true);
  });

  it("T3: maxAttempts ≠ the queue's max_retries + 1", () => {
    expectDescribed(onlyViolation(report(policy({ maxAttempts: 4 })), "T3"), 4, 3);
    expectDescribed(onlyViolation(report(policy({ maxAttempts: 2 })), "T3"), 2, 3);
  });

  it("T3: a consumer without max_retries is checked against the platform default (3)", () => {
    const config = wrangler({ work: { max_retries: undefined } });
    expectDescribed(onlyViolation(report(policy({ maxAttempts: 3 }), config), "T3"), 3, 4);
    expect(report(policy({ maxAttempts: 4 }), config).ok).toBe(true);
  });

  it("T4: retryDelaySeconds above Queues' 43 200 s maximum", () => {
    // No retry_delay on the queue, so only the maximum applies; stale threshold raised so T5 still holds.
    const config = wrangler({ work: { retry_delay: undefined } });
    const r = report(policy({ retryDelaySeconds: 43_201, staleQueuedAfterMs: 50_000_000 }), config);
    expectDescribed(onlyViolation(r, "T4"), 43_201, 43_200);
  });

  it("T4: retryDelaySeconds differs from the queue's retry_delay", () => {
    const v = onlyViolation(report(policy({ retryDelaySeconds: 10 })), "T4");
    expect(v.op).toBe("=");
    expectDescribed(v, 10, 5);
  });

  it("T5: staleQueuedAfterMs not above max_batch_timeout + retry delay + margin", () => {
    // 60 s batch timeout + 5 s retry delay + 10 s margin = 75 000; equal is not enough.
    const config = wrangler({ work: { max_batch_timeout: 60 } });
    expectDescribed(onlyViolation(report(policy({ staleQueuedAfterMs: 75_000 }), config), "T5"), 75_000, 75_000);
    expect(report(policy({ staleQueuedAfterMs: 75_001 }), config).ok).toBe(true);
  });

  it("T6: staleRunningAfterMs not above heartbeatTimeoutMs + flush interval + sweep grace", () => {
    // 60 000 + 5 000 + 15 000 = 80 000 (kept above the 1-minute cron so T7 holds).
    const v = onlyViolation(report(policy({ heartbeatTimeoutMs: 60_000, staleRunningAfterMs: 80_000 })), "T6");
    expectDescribed(v, 80_000, 80_000);
    expect(report(policy({ heartbeatTimeoutMs: 60_000, staleRunningAfterMs: 80_001 })).ok).toBe(true);
  });

  it("T7: a 30-minute cron with stale thresholds below 30 minutes", () => {
    const v = onlyViolation(report(policy(), wrangler({ crons: ["*/30 * * * *"] })), "T7");
    expectDescribed(v, 1_800_000, 90_000);
  });

  it("T7: no cron at all is a violation with a note", () => {
    const v = onlyViolation(report(policy(), wrangler({ crons: [] })), "T7");
    expect(v.left.value).toBe(Infinity);
    expect(v.note).toBe("no cron trigger in wrangler.toml");
    expect(describeViolation(v)).toContain("no cron trigger in wrangler.toml");
  });

  it("T8: the carrying queue has no dead_letter_queue", () => {
    const v = onlyViolation(report(policy(), wrangler({ work: { dead_letter_queue: undefined } })), "T8");
    expectDescribed(v, 0, 1);
    expect(describeViolation(v)).toContain(`queue "work" has no dead_letter_queue`);
  });

  it("T8: the dead-letter queue has no consumer", () => {
    const v = onlyViolation(report(policy(), wrangler({ dlqConsumer: false })), "T8");
    expectDescribed(v, 0, 1);
    expect(describeViolation(v)).toContain(`dead-letter queue "work-dlq" has no consumer`);
  });

  it("T8 (with T3 and T5): no consumer at all for the type's queue", () => {
    const r = report(policy({ queue: "elsewhere" }));
    expect(r.violations.map((v) => v.rule)).toEqual(["T3", "T5", "T8"]);
    for (const v of r.violations) {
      expect(v.note).toBe(`no consumer for queue "elsewhere" in wrangler.toml`);
      expect(describeViolation(v)).toContain(`no consumer for queue "elsewhere"`);
    }
    // No retry_delay to compare with, so only the T4 maximum was checked.
    expect(r.checks.filter((c) => c.rule === "T4")).toHaveLength(1);
  });

  it("T9: expectedRuntimeMs not below timeoutMs", () => {
    expectDescribed(onlyViolation(report(policy({ expectedRuntimeMs: 300_000 })), "T9"), 300_000, 300_000);
    expect(report(policy({ expectedRuntimeMs: 299_999 })).ok).toBe(true);
  });

  it("reports each type on its own", () => {
    const r = checkTimingContract(
      { "good.op": policy(), "bad.op": policy({ expectedRuntimeMs: 400_000 }) },
      deploymentFromWranglerConfig(wrangler()),
      DEFAULT_SETTINGS,
    );
    expect(r.violations.map((v) => [v.rule, v.type])).toEqual([["T9", "bad.op"]]);
    expect(new Set(r.checks.map((c) => c.type))).toEqual(new Set(["good.op", "bad.op"]));
  });

  it("uses the settings it is given", () => {
    const d = deploymentFromWranglerConfig(wrangler());
    const strict = { ...DEFAULT_SETTINGS, safetyMarginMs: 700_000 };
    const v = checkTimingContract({ [TYPE]: policy() }, d, strict).violations;
    expect(v.map((c) => c.rule)).toEqual(["T1"]);
    expect(v[0]!.left.value).toBe(1_000_000);
  });
});

describe("assertTimingContract", () => {
  it("throws TimingContractViolation naming the rule", () => {
    const r = report(policy({ heartbeatTimeoutMs: 2_000 }));
    let thrown: unknown;
    try {
      assertTimingContract(r);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(TimingContractViolation);
    expect(thrown).toBeInstanceOf(Error);
    const err = thrown as TimingContractViolation;
    expect(err.name).toBe("TimingContractViolation");
    expect(err.violations).toEqual(r.violations);
    expect(err.message).toContain("T2");
    expect(err.message).toContain(RULES.T2);
    expect(err.message).toContain("(2000)");
    expect(err.message).toContain("(3000)");
  });

  it("names every violated rule in the message", () => {
    const r = report(policy({ timeoutMs: 880_000, expectedRuntimeMs: 900_000 }));
    expect(r.violations.map((v) => v.rule)).toEqual(["T1", "T9"]);
    expect(() => assertTimingContract(r)).toThrow(/T1 violated.*T9 violated/);
  });
});
