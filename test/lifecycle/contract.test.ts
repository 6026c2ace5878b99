// The timing contract (contract v2 section 5): each rule T1–T9 broken in turn, and the real config passing.
import { describe, expect, it } from "vitest";
import {
  checkTimingContract,
  DEFAULT_SETTINGS,
  deploymentFromWranglerConfig,
  describeViolation,
  QUEUE_DEFAULTS,
  violationsFor,
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
    timeoutMs: 60_000,
    expectedRuntimeMs: 20_000,
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
function wrangler(
  opts: { work?: Partial<Consumer>; dlqConsumer?: boolean; workProducer?: boolean; crons?: string[]; extra?: Consumer[] } = {},
): WranglerConfigLike {
  const consumers: Consumer[] = [
    { queue: "work", max_retries: 2, retry_delay: 5, max_batch_size: 10, max_batch_timeout: 2, dead_letter_queue: "work-dlq", ...opts.work },
    ...(opts.extra ?? []),
  ];
  if (opts.dlqConsumer !== false) consumers.push({ queue: "work-dlq", max_retries: 5 });
  const producers = [{ queue: "work-dlq", binding: "WORK_DLQ" }, ...(opts.extra ?? []).map((c) => ({ queue: c.queue, binding: c.queue.toUpperCase() }))];
  if (opts.workProducer !== false) producers.unshift({ queue: "work", binding: "WORK_QUEUE" });
  return { queues: { consumers, producers }, triggers: { crons: opts.crons ?? ["* * * * *"] } };
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
    // Every rule was actually checked (T4 twice: the maximum and the queue's retry_delay;
    // T8 three times: a consumer, a producer, a consumed dead-letter queue).
    expect(r.checks.map((c) => c.rule).sort()).toEqual(["T1", "T2", "T3", "T4", "T4", "T5", "T6", "T7", "T8", "T8", "T8", "T9"]);
    expect(r.checks.every((c) => c.ok && c.type === TYPE)).toBe(true);
    expect(violationsFor(r, TYPE)).toEqual([]);
  });

  it("the registered policies pass against the committed deployment", () => {
    const r = checkTimingContract(registeredPolicies(), DEPLOYMENT, DEFAULT_SETTINGS);
    expect(r.violations.map(describeViolation)).toEqual([]);
    expect(Object.keys(registeredPolicies())).toContain("demo.work");
  });

  it("T1: timeoutMs + safety margin above the consumer wall-clock limit", () => {
    // 880 000 + 30 000 = 910 000 > 900 000 (single-message batches, so T5 does not add the timeout).
    const single = wrangler({ work: { max_batch_size: 1 } });
    expectDescribed(onlyViolation(report(policy({ timeoutMs: 880_000 }), single), "T1"), 910_000, 900_000);
    expect(report(policy({ timeoutMs: 870_000 }), single).ok).toBe(true);
  });

  it("T2: heartbeatTimeoutMs below 3 × heartbeatIntervalMs", () => {
    expectDescribed(onlyViolation(report(policy({ heartbeatTimeoutMs: 2_999 })), "T2"), 2_999, 3_000);
    expect(report(policy({ heartbeatTimeoutMs: 3_000 })).ok).toBe(true);
  });

  it("T3: a queue that never redelivers (max_retries 0) cannot hand a crashed invocation's dispatches back", () => {
    const v = onlyViolation(report(policy(), wrangler({ work: { max_retries: 0 } })), "T3");
    expectDescribed(v, 0, 1);
    expect(v.left.label).toBe(`max_retries of queue "work"`);
    expect(report(policy(), wrangler({ work: { max_retries: 1 } })).ok).toBe(true);
  });

  it("T3: maxAttempts is the tracker's, not tied to max_retries any more", () => {
    for (const maxAttempts of [1, 3, 4, 10]) expect(report(policy({ maxAttempts })).ok).toBe(true);
    // A consumer without max_retries gets the platform default (3), which redelivers.
    const config = wrangler({ work: { max_retries: undefined } });
    const t3 = report(policy(), config).checks.find((c) => c.rule === "T3")!;
    expect(t3).toMatchObject({ ok: true, left: { value: QUEUE_DEFAULTS.maxRetries } });
  });

  it("T3, T5, T8 on a second queue: a type on `reports` (max_retries 4) is checked against reports, not work", () => {
    const reports: Consumer = { queue: "reports", max_retries: 4, max_batch_size: 1, max_batch_timeout: 3, dead_letter_queue: "work-dlq" };
    const config = wrangler({ extra: [reports] });
    const r = checkTimingContract(
      { [TYPE]: policy(), "test.report": policy({ queue: "reports", timeoutMs: 600_000, expectedRuntimeMs: 60_000 }) },
      deploymentFromWranglerConfig(config),
      DEFAULT_SETTINGS,
    );
    expect(r.violations).toEqual([]);
    const of = (type: string, rule: RuleId) => r.checks.filter((c) => c.type === type && c.rule === rule);
    expect(of("test.report", "T3")[0]!.left).toEqual({ label: `max_retries of queue "reports"`, value: 4 });
    // reports delivers one message per batch: no attempt timeout is added; 3 s + 5 s + 10 s.
    expect(of("test.report", "T5")[0]!.right.value).toBe(18_000);
    // work's batch of 10 holds only work's types: test.report's 600 s timeout is not counted there.
    expect(of(TYPE, "T5")[0]!.right.value).toBe(2_000 + 5_000 + 10_000 + 60_000);
    expect(of("test.report", "T8").map((c) => c.left.label)).toEqual([
      `consumers of queue "reports" in this Worker`,
      `producers for queue "reports" in this Worker`,
      `dead-letter queues with a consumer for "reports"`,
    ]);
    // The same queue with max_retries 0 breaks T3 for its own type only.
    const broken = wrangler({ extra: [{ ...reports, max_retries: 0 }] });
    const rb = checkTimingContract({ [TYPE]: policy(), "test.report": policy({ queue: "reports" }) }, deploymentFromWranglerConfig(broken), DEFAULT_SETTINGS);
    expect(rb.violations.map((v) => [v.rule, v.type])).toEqual([["T3", "test.report"]]);
    expect(violationsFor(rb, TYPE)).toEqual([]);
    expect(violationsFor(rb, "test.report").map((v) => v.rule)).toEqual(["T3"]);
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

  it("T5: with max_batch_size 1, staleQueuedAfterMs must exceed max_batch_timeout + retry delay + margin", () => {
    // 60 s batch timeout + 5 s retry delay + 10 s margin = 75 000; equal is not enough.
    const config = wrangler({ work: { max_batch_timeout: 60, max_batch_size: 1 } });
    const v = onlyViolation(report(policy({ staleQueuedAfterMs: 75_000 }), config), "T5");
    expectDescribed(v, 75_000, 75_000);
    expect(v.right.label).toBe("max_batch_timeout + retry delay + margin (ms)");
    expect(v.note).toBeUndefined();
    expect(report(policy({ staleQueuedAfterMs: 75_001 }), config).ok).toBe(true);
  });

  it("T5: with max_batch_size 10, a dispatch can wait behind a batch's slowest attempt: its timeout is added", () => {
    // 2 s + 5 s + 10 s + 60 s (this type's timeoutMs) = 77 000.
    const v = onlyViolation(report(policy({ staleQueuedAfterMs: 77_000, staleRunningAfterMs: 90_000 })), "T5");
    expectDescribed(v, 77_000, 77_000);
    expect(v.right.label).toBe(`max_batch_timeout + retry delay + margin + longest timeoutMs on queue "work" (ms)`);
    expect(v.note).toBe(`a batch of up to 10 on queue "work" is held until its slowest attempt ends: up to 60000 ms (${TYPE})`);
    expect(report(policy({ staleQueuedAfterMs: 77_001 })).ok).toBe(true);
    // The same numbers hold with single-message batches.
    expect(report(policy({ staleQueuedAfterMs: 77_000 }), wrangler({ work: { max_batch_size: 1 } })).ok).toBe(true);
  });

  it("T5: the longest timeout of any type on the queue counts for every type on it", () => {
    const slow = policy({ timeoutMs: 300_000, expectedRuntimeMs: 60_000, staleQueuedAfterMs: 400_000, staleRunningAfterMs: 400_000 });
    const r = checkTimingContract({ [TYPE]: policy(), "slow.op": slow }, deploymentFromWranglerConfig(wrangler()), DEFAULT_SETTINGS);
    // test.op's own timeout is 60 s, but a batch it shares with slow.op may be held 300 s.
    const v = r.violations.find((c) => c.type === TYPE)!;
    expect(r.violations.map((c) => [c.rule, c.type])).toEqual([["T5", TYPE]]);
    expectDescribed(v, 120_000, 2_000 + 5_000 + 10_000 + 300_000);
    expect(v.note).toContain("up to 300000 ms (slow.op)");
  });

  it("T6: staleRunningAfterMs not above heartbeatTimeoutMs + flush interval + sweep grace", () => {
    // 60 000 + 30 000 + 15 000 = 105 000 (kept above the 1-minute cron so T7 holds).
    const v = onlyViolation(report(policy({ heartbeatTimeoutMs: 60_000, staleRunningAfterMs: 105_000 })), "T6");
    expectDescribed(v, 105_000, 105_000);
    expect(report(policy({ heartbeatTimeoutMs: 60_000, staleRunningAfterMs: 105_001 })).ok).toBe(true);
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

  it("T8: no producer for the carrying queue, so its runs cannot be sent", () => {
    const v = onlyViolation(report(policy(), wrangler({ workProducer: false })), "T8");
    expectDescribed(v, 0, 1);
    expect(describeViolation(v)).toContain(`no [[queues.producers]] for queue "work" in wrangler.toml`);
  });

  it("T8 (with T3 and T5): no consumer at all for the type's queue", () => {
    const r = report(policy({ queue: "elsewhere" }));
    expect(r.violations.map((v) => v.rule)).toEqual(["T3", "T5", "T8", "T8", "T8"]);
    const [t3, t5, consumer, producer, dlq] = r.violations;
    for (const v of [t3!, t5!, consumer!, dlq!]) {
      expect(v.note).toBe(`no consumer for queue "elsewhere" in wrangler.toml`);
      expect(describeViolation(v)).toContain(`no consumer for queue "elsewhere"`);
    }
    expect(consumer!.left).toEqual({ label: `consumers of queue "elsewhere" in this Worker`, value: 0 });
    expect(producer!.note).toContain(`no [[queues.producers]] for queue "elsewhere"`);
    // No retry_delay to compare with, so only the T4 maximum was checked.
    expect(r.checks.filter((c) => c.rule === "T4")).toHaveLength(1);
  });

  it("T9: expectedRuntimeMs not below timeoutMs", () => {
    expectDescribed(onlyViolation(report(policy({ expectedRuntimeMs: 60_000 })), "T9"), 60_000, 60_000);
    expect(report(policy({ expectedRuntimeMs: 59_999 })).ok).toBe(true);
  });

  it("reports each type on its own", () => {
    const r = checkTimingContract(
      { "good.op": policy(), "bad.op": policy({ expectedRuntimeMs: 400_000 }) },
      deploymentFromWranglerConfig(wrangler()),
      DEFAULT_SETTINGS,
    );
    expect(r.violations.map((v) => [v.rule, v.type])).toEqual([["T9", "bad.op"]]);
    expect(new Set(r.checks.map((c) => c.type))).toEqual(new Set(["good.op", "bad.op"]));
    expect(violationsFor(r, "good.op")).toEqual([]);
    expect(violationsFor(r, "bad.op").map((v) => v.rule)).toEqual(["T9"]);
  });

  it("uses the settings it is given", () => {
    const d = deploymentFromWranglerConfig(wrangler());
    const strict = { ...DEFAULT_SETTINGS, safetyMarginMs: 850_000 };
    const v = checkTimingContract({ [TYPE]: policy() }, d, strict).violations;
    expect(v.map((c) => c.rule)).toEqual(["T1"]);
    expect(v[0]!.left.value).toBe(910_000);
  });
});
