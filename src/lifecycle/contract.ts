/**
 * The timing contract (contract v2 section 5, rules T1–T9): every rule is a
 * comparison of two numbers, and every check is reported with both, so a
 * violation names the rule, the type and the numbers that disagree.
 *
 * v2 (the run's tracker schedules attempts): the queue is transport, so the
 * queue's delivery count no longer bounds the attempts (T3), and a dispatch
 * may sit behind a whole batch before a consumer sees it (T5). A violation
 * refuses new runs of the type at acceptance; runs already accepted keep
 * converging (the consumer, the trackers and the sweep never check it).
 */
import { longestCronGapMs } from "./cron";
import type { DeploymentSettings } from "./deployment";
import { MAX_RETRY_DELAY_SECONDS, type LifecyclePolicy, type LifecycleSettings } from "./policy";

export const RULES = {
  T1: "timeoutMs + safety margin ≤ the consumer's wall-clock limit",
  T2: "heartbeatTimeoutMs ≥ 3 × heartbeatIntervalMs",
  T3: "the carrying queue redelivers a crashed consumer invocation (max_retries ≥ 1) before it dead-letters",
  T4: "retryDelaySeconds ≤ 43,200 and matches the queue's retry_delay where set",
  T5:
    "staleQueuedAfterMs > the longest a dispatch can be held: max_batch_timeout + retry delay + margin, plus the longest timeoutMs on the queue where a batch holds more than one message",
  T6: "staleRunningAfterMs > heartbeatTimeoutMs + heartbeat flush interval + sweep grace",
  T7: "the cron interval ≤ the smallest stale threshold",
  T8: "every queue that carries a type has a producer and a consumer in this Worker, and a dead-letter queue with a consumer",
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

/** The type carried by `queue` whose attempts may run longest, and that timeout (ms). */
function longestTimeoutOn(policies: Readonly<Record<string, LifecyclePolicy>>, queue: string): { type: string; timeoutMs: number } {
  let longest = { type: "", timeoutMs: 0 };
  for (const [type, p] of Object.entries(policies)) {
    if (p.queue === queue && p.timeoutMs > longest.timeoutMs) longest = { type, timeoutMs: p.timeoutMs };
  }
  return longest;
}

/** Check every policy against the deployment and settings (rules T1–T9). */
export function checkTimingContract(
  policies: Readonly<Record<string, LifecyclePolicy>>,
  deployment: DeploymentSettings,
  settings: LifecycleSettings,
): ContractReport {
  const checks: ContractCheck[] = [];
  const cronGapMs = longestCronGapMs(deployment.crons);
  const present = (yes: boolean) => (yes ? 1 : 0);
  for (const [type, p] of Object.entries(policies)) {
    const q = p.queue;
    const consumer = deployment.queueConsumers.find((c) => c.queue === q);
    const missing = consumer ? undefined : `no consumer for queue "${q}" in wrangler.toml`;
    checks.push(
      check("T1", type, { label: "timeoutMs + safety margin", value: p.timeoutMs + settings.safetyMarginMs }, "≤", {
        label: "consumer wall-clock limit (ms)",
        value: settings.consumerWallClockLimitMs,
      }),
      check("T2", type, { label: "heartbeatTimeoutMs", value: p.heartbeatTimeoutMs }, "≥", {
        label: "3 × heartbeatIntervalMs",
        value: 3 * p.heartbeatIntervalMs,
      }),
      // The tracker allocates attempts (maxAttempts is its own); the queue only has to hand a
      // crashed invocation's messages back once, so their dispatches are claimed or seen as stale.
      check(
        "T3",
        type,
        { label: `max_retries of queue "${q}"`, value: consumer ? consumer.maxRetries : NaN },
        "≥",
        { label: "one redelivery of a crashed invocation", value: 1 },
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
          label: `retry_delay of queue "${q}" (s)`,
          value: consumer.retryDelaySeconds,
        }),
      );
    }
    // A batch settles its messages only when its invocation ends, and a local queue hands out one
    // batch at a time: behind a batch of several, a dispatch waits for the slowest attempt in it.
    const batched = consumer !== undefined && consumer.maxBatchSize > 1;
    const longest = batched ? longestTimeoutOn(policies, q) : { type: "", timeoutMs: 0 };
    checks.push(
      check(
        "T5",
        type,
        { label: "staleQueuedAfterMs", value: p.staleQueuedAfterMs },
        ">",
        {
          label: batched
            ? `max_batch_timeout + retry delay + margin + longest timeoutMs on queue "${q}" (ms)`
            : "max_batch_timeout + retry delay + margin (ms)",
          value: consumer
            ? consumer.maxBatchTimeoutSeconds * 1000 + p.retryDelaySeconds * 1000 + settings.queueMarginMs + longest.timeoutMs
            : NaN,
        },
        missing ??
          (batched
            ? `a batch of up to ${consumer.maxBatchSize} on queue "${q}" is held until its slowest attempt ends: up to ${longest.timeoutMs} ms (${longest.type})`
            : undefined),
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
    const produced = deployment.queueProducers.some((pr) => pr.queue === q);
    const dlq = consumer?.deadLetterQueue ?? null;
    const dlqConsumed = dlq !== null && deployment.queueConsumers.some((c) => c.queue === dlq);
    checks.push(
      check("T8", type, { label: `consumers of queue "${q}" in this Worker`, value: present(consumer !== undefined) }, "=", { label: "required", value: 1 }, missing),
      check(
        "T8",
        type,
        { label: `producers for queue "${q}" in this Worker`, value: present(produced) },
        "=",
        { label: "required", value: 1 },
        produced ? undefined : `no [[queues.producers]] for queue "${q}" in wrangler.toml: its runs cannot be sent`,
      ),
      check(
        "T8",
        type,
        { label: `dead-letter queues with a consumer for "${q}"`, value: present(dlqConsumed) },
        "=",
        { label: "required", value: 1 },
        dlqConsumed
          ? undefined
          : (missing ?? (dlq === null ? `queue "${q}" has no dead_letter_queue` : `dead-letter queue "${dlq}" has no consumer`)),
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

/** The checks of `type` that fail: non-empty means new runs of the type are refused (contract section 5). */
export function violationsFor(report: ContractReport, type: string): ContractCheck[] {
  return report.violations.filter((c) => c.type === type);
}
