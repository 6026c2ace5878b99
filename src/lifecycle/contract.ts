/**
 * The timing contract (contract section 5, rules T1–T9): every rule is a
 * comparison of two numbers, and every check is reported with both, so a
 * violation names the rule, the type and the numbers that disagree.
 */
import { longestCronGapMs } from "./cron";
import type { DeploymentSettings } from "./deployment";
import { MAX_RETRY_DELAY_SECONDS, type LifecyclePolicy, type LifecycleSettings } from "./policy";

export const RULES = {
  T1: "timeoutMs + safety margin ≤ the consumer's wall-clock limit",
  T2: "heartbeatTimeoutMs ≥ 3 × heartbeatIntervalMs",
  T3: "maxAttempts = the carrying queue's max_retries + 1",
  T4: "retryDelaySeconds ≤ 43,200 and matches the queue's retry_delay where set",
  T5: "staleQueuedAfterMs > the queue's max_batch_timeout + retry delay + margin",
  T6: "staleRunningAfterMs > heartbeatTimeoutMs + heartbeat flush interval + sweep grace",
  T7: "the cron interval ≤ the smallest stale threshold",
  T8: "every queue that carries a type has a dead-letter queue with a consumer",
  T9: "expectedRuntimeMs < timeoutMs",
} as const;
export type RuleId = keyof typeof RULES;

export interface ContractCheck {
  rule: RuleId;
  /** Operation type the check is about. */
  type: string;
  ok: boolean;
  /** The two sides of the comparison, described and valued. */
  left: { label: string; value: number };
  op: "≤" | "≥" | "=" | "<" | ">";
  right: { label: string; value: number };
  /** Extra words when numbers alone do not say it (e.g. a missing consumer). */
  note?: string;
}

export interface ContractReport {
  ok: boolean;
  checks: ContractCheck[];
  violations: ContractCheck[];
}

const compare: Record<ContractCheck["op"], (a: number, b: number) => boolean> = {
  "≤": (a, b) => a <= b,
  "≥": (a, b) => a >= b,
  "=": (a, b) => a === b,
  "<": (a, b) => a < b,
  ">": (a, b) => a > b,
};

function check(
  rule: RuleId,
  type: string,
  left: ContractCheck["left"],
  op: ContractCheck["op"],
  right: ContractCheck["right"],
  note?: string,
): ContractCheck {
  const ok = Number.isFinite(left.value) && Number.isFinite(right.value) && compare[op](left.value, right.value);
  return note === undefined ? { rule, type, ok, left, op, right } : { rule, type, ok, left, op, right, note };
}

/** Check every policy against the deployment and settings (rules T1–T9). */
export function checkTimingContract(
  policies: Readonly<Record<string, LifecyclePolicy>>,
  deployment: DeploymentSettings,
  settings: LifecycleSettings,
): ContractReport {
  const checks: ContractCheck[] = [];
  const cronGapMs = longestCronGapMs(deployment.crons);
  for (const [type, p] of Object.entries(policies)) {
    const consumer = deployment.queueConsumers.find((c) => c.queue === p.queue);
    const missing = consumer ? undefined : `no consumer for queue "${p.queue}" in wrangler.toml`;
    checks.push(
      check("T1", type, { label: "timeoutMs + safety margin", value: p.timeoutMs + settings.safetyMarginMs }, "≤", {
        label: "consumer wall-clock limit (ms)",
        value: settings.consumerWallClockLimitMs,
      }),
      check("T2", type, { label: "heartbeatTimeoutMs", value: p.heartbeatTimeoutMs }, "≥", {
        label: "3 × heartbeatIntervalMs",
        value: 3 * p.heartbeatIntervalMs,
      }),
      check(
        "T3",
        type,
        { label: "maxAttempts", value: p.maxAttempts },
        "=",
        { label: `max_retries + 1 of queue "${p.queue}"`, value: consumer ? consumer.maxRetries + 1 : NaN },
        missing,
      ),
      check("T4", type, { label: "retryDelaySeconds", value: p.retryDelaySeconds }, "≤", {
        label: "maximum retry delay (s)",
        value: MAX_RETRY_DELAY_SECONDS,
      }),
    );
    if (consumer?.retryDelaySeconds != null) {
      checks.push(
        check("T4", type, { label: "retryDelaySeconds", value: p.retryDelaySeconds }, "=", {
          label: `retry_delay of queue "${p.queue}" (s)`,
          value: consumer.retryDelaySeconds,
        }),
      );
    }
    checks.push(
      check(
        "T5",
        type,
        { label: "staleQueuedAfterMs", value: p.staleQueuedAfterMs },
        ">",
        {
          label: "max_batch_timeout + retry delay + margin (ms)",
          value: consumer
            ? consumer.maxBatchTimeoutSeconds * 1000 + p.retryDelaySeconds * 1000 + settings.queueMarginMs
            : NaN,
        },
        missing,
      ),
      check("T6", type, { label: "staleRunningAfterMs", value: p.staleRunningAfterMs }, ">", {
        label: "heartbeatTimeoutMs + flush interval + sweep grace",
        value: p.heartbeatTimeoutMs + settings.heartbeatFlushIntervalMs + settings.sweepGraceMs,
      }),
      check(
        "T7",
        type,
        { label: "cron interval (ms)", value: cronGapMs },
        "≤",
        { label: "smallest stale threshold (ms)", value: Math.min(p.staleQueuedAfterMs, p.staleRunningAfterMs) },
        deployment.crons.length === 0 ? "no cron trigger in wrangler.toml" : undefined,
      ),
    );
    const dlq = consumer?.deadLetterQueue ?? null;
    const dlqConsumed = dlq !== null && deployment.queueConsumers.some((c) => c.queue === dlq);
    checks.push(
      check(
        "T8",
        type,
        { label: `dead-letter queue with a consumer for "${p.queue}"`, value: dlqConsumed ? 1 : 0 },
        "=",
        { label: "required", value: 1 },
        dlqConsumed
          ? undefined
          : (missing ?? (dlq === null ? `queue "${p.queue}" has no dead_letter_queue` : `dead-letter queue "${dlq}" has no consumer`)),
      ),
      check("T9", type, { label: "expectedRuntimeMs", value: p.expectedRuntimeMs }, "<", {
        label: "timeoutMs",
        value: p.timeoutMs,
      }),
    );
  }
  const violations = checks.filter((c) => !c.ok);
  return { ok: violations.length === 0, checks, violations };
}

/** One line naming the rule, the type and both numbers, e.g. for logs and errors. */
export function describeViolation(c: ContractCheck): string {
  const base = `${c.rule} violated for ${c.type}: ${c.left.label} (${c.left.value}) must be ${c.op} ${c.right.label} (${c.right.value})`;
  return c.note ? `${base}; ${c.note}` : base;
}

/** Thrown by an entry point that refuses to act on a violated contract. */
export class TimingContractViolation extends Error {
  constructor(readonly violations: ContractCheck[]) {
    super(`Timing contract violated (${RULES[violations[0]!.rule]}): ${violations.map(describeViolation).join("; ")}`);
    this.name = "TimingContractViolation";
  }
}

/** Throw `TimingContractViolation` unless every rule holds. */
export function assertTimingContract(report: ContractReport): void {
  if (!report.ok) throw new TimingContractViolation(report.violations);
}
