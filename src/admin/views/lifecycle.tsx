/**
 * /admin/lifecycle: each type's policy, the system settings and the timing
 * contract T1–T9 with both numbers, in human units (the exact ms beside them).
 */
import type { ContractReport, LifecyclePolicy, LifecycleSettings, RuleId } from "../../lifecycle";
import { RULES } from "../../lifecycle";
import { exactDuration } from "./components";

type Unit = "ms" | "s" | "count" | "text";

const FIELDS: Array<[keyof LifecyclePolicy, string, Unit]> = [
  ["timeoutMs", "Attempt timeout", "ms"],
  ["expectedRuntimeMs", "Expected runtime", "ms"],
  ["heartbeatIntervalMs", "Heartbeat interval", "ms"],
  ["heartbeatTimeoutMs", "Heartbeat timeout", "ms"],
  ["staleQueuedAfterMs", "Stale when queued after", "ms"],
  ["staleRunningAfterMs", "Stale when running after", "ms"],
  ["maxAttempts", "Max attempts", "count"],
  ["retryDelaySeconds", "Retry delay", "s"],
  ["queue", "Queue", "text"],
];

const SETTINGS: Record<keyof LifecycleSettings, string> = {
  consumerWallClockLimitMs: "Consumer wall-clock limit",
  safetyMarginMs: "Safety margin under that limit",
  heartbeatFlushIntervalMs: "Heartbeat flush interval to D1",
  sweepGraceMs: "Sweep grace past a deadline",
  queueMarginMs: "Queue delivery margin",
  cancelGraceMs: "Cancel grace (an attempt's time to stop after its run is cancelled)",
};

/** The unit of each rule's numbers. */
const RULE_UNITS: Record<RuleId, Unit> = { T1: "ms", T2: "ms", T3: "count", T4: "s", T5: "ms", T6: "ms", T7: "ms", T8: "count", T9: "ms" };

/** A value in human units, the raw number beside it in code (what the config and the code say). */
function Value({ value, unit }: { value: string | number; unit: Unit }) {
  if (typeof value !== "number" || unit === "count" || unit === "text") return <code>{String(value)}</code>;
  const ms = unit === "s" ? value * 1_000 : value;
  // The raw number only where it says more than the human one ("12 h (43200 s)", "5 min (300000 ms)", not "5 s (5 s)").
  if (exactDuration(ms) === `${value} ${unit}`) return <span class="human">{exactDuration(ms)}</span>;
  return (
    <>
      <span class="human">{exactDuration(ms)}</span>{" "}
      <span class="muted">
        (<code>{String(value)}</code> {unit})
      </span>
    </>
  );
}

export function LifecycleView({
  types,
  report,
  settings,
}: {
  types: Array<{ type: string; description: string; policy: LifecyclePolicy }>;
  report: ContractReport;
  settings: LifecycleSettings;
}) {
  return (
    <>
      <div class="page-head">
        <h1>Lifecycle</h1>
        <span class={`badge ${report.ok ? "badge--succeeded" : "badge--failed"}`} data-contract={report.ok ? "ok" : "violated"}>
          {report.ok ? "Timing contract holds" : `Timing contract violated (${report.violations.length})`}
        </span>
      </div>
      <h2>Policies</h2>
      {types.map((t) => (
        <section class="policy" aria-labelledby={`policy-${t.type}`}>
          <h3 id={`policy-${t.type}`}>
            <code>{t.type}</code>
          </h3>
          <p class="muted">{t.description}</p>
          <dl class="facts">
            {FIELDS.map(([k, label, unit]) => (
              <>
                <dt>{label}</dt>
                <dd data-field={k}>
                  <Value value={t.policy[k]} unit={unit} />
                </dd>
              </>
            ))}
          </dl>
        </section>
      ))}
      <h2>System settings</h2>
      <dl class="facts">
        {(Object.keys(SETTINGS) as Array<keyof LifecycleSettings>).map((k) => (
          <>
            <dt>{SETTINGS[k]}</dt>
            <dd data-setting={k}>
              <Value value={settings[k]} unit="ms" />
            </dd>
          </>
        ))}
      </dl>
      <h2>Timing contract</h2>
      <table class="contract">
        <thead>
          <tr>
            <th scope="col">Rule</th>
            <th scope="col">Type</th>
            <th scope="col">Check</th>
            <th scope="col">Numbers</th>
            <th scope="col">Result</th>
          </tr>
        </thead>
        <tbody>
          {report.checks.map((c) => (
            <tr data-rule={c.rule} data-type={c.type} class={c.ok ? "" : "row--bad"}>
              <td>
                <strong>{c.rule}</strong>
              </td>
              <td>
                <code>{c.type}</code>
              </td>
              <td>{RULES[c.rule]}</td>
              <td>
                <div data-value={String(c.left.value)}>
                  {c.left.label} = <Value value={c.left.value} unit={RULE_UNITS[c.rule]} />
                </div>
                <div data-value={String(c.right.value)}>
                  {c.op} {c.right.label} = <Value value={c.right.value} unit={RULE_UNITS[c.rule]} />
                </div>
                {c.note ? <div class="muted">{c.note}</div> : null}
              </td>
              <td>{c.ok ? "✓ holds" : "✕ violated"}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
