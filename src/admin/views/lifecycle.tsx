import type { ContractReport, LifecyclePolicy, LifecycleSettings } from "../../lifecycle";
import { RULES } from "../../lifecycle";

const FIELDS: Array<[keyof LifecyclePolicy, string]> = [
  ["timeoutMs", "Timeout (ms)"],
  ["expectedRuntimeMs", "Expected runtime (ms)"],
  ["heartbeatIntervalMs", "Heartbeat interval (ms)"],
  ["heartbeatTimeoutMs", "Heartbeat timeout (ms)"],
  ["staleQueuedAfterMs", "Stale queued after (ms)"],
  ["staleRunningAfterMs", "Stale running after (ms)"],
  ["maxAttempts", "Max attempts"],
  ["retryDelaySeconds", "Retry delay (s)"],
  ["queue", "Queue"],
];

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
        <section class="policy">
          <h3>
            <code>{t.type}</code>
          </h3>
          <p class="muted">{t.description}</p>
          <dl class="facts">
            {FIELDS.map(([k, label]) => (
              <>
                <dt>{label}</dt>
                <dd>
                  <code>{String(t.policy[k])}</code>
                </dd>
              </>
            ))}
          </dl>
        </section>
      ))}
      <h2>System settings</h2>
      <dl class="facts">
        {Object.entries(settings).map(([k, v]) => (
          <>
            <dt>{k}</dt>
            <dd>
              <code>{String(v)}</code>
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
            <tr data-rule={c.rule} class={c.ok ? "" : "row--bad"}>
              <td>
                <strong>{c.rule}</strong>
              </td>
              <td>
                <code>{c.type}</code>
              </td>
              <td>{RULES[c.rule]}</td>
              <td>
                {c.left.label} = <code>{String(c.left.value)}</code> {c.op} {c.right.label} = <code>{String(c.right.value)}</code>
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
