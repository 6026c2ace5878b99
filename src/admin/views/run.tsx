/**
 * /admin/operations/{run}: status with the operator-safe explanation of its
 * reason code, progress, the audit timeline, and collapsed diagnostics. A
 * reconciled failure reads differently from a normal one: it says the
 * machinery decided, which detector, and keeps the original error beside it.
 */
import { explainReason, reasonFamily, type Detector } from "../../lifecycle";
import type { AuditEvent, RunRecord } from "../../runs";
import { Badge, iso, ProgressBar, RelTime } from "./components";
import { displayOf } from "./operations";

const DETECTOR_TEXT: Record<Detector, string> = {
  tracker_alarm: "the run's tracker (its alarm found the attempt's deadline passed)",
  sweep: "the reconciliation sweep (the backstop, after the tracker could not act)",
  dead_letter: "the dead-letter bridge (the queue gave up on the message)",
};

const ACTION_TEXT: Record<string, string> = {
  "run.queued": "Queued",
  "run.attempt_started": "Attempt started",
  "run.completed": "Completed",
  "run.attempt_failed": "Attempt failed, will retry",
  "run.failed": "Failed",
  "run.attempt_lost": "Attempt lost (no heartbeat), awaiting redelivery",
  "run.reconciled": "Reconciled",
  "run.late_result_discarded": "Late result discarded",
};

function attemptOf(e: AuditEvent): string | null {
  const m = e.metadata;
  if (m && typeof m === "object" && !Array.isArray(m) && typeof m.attempt === "number") return `attempt ${m.attempt}`;
  return null;
}

export function Timeline({ events, now }: { events: AuditEvent[]; now: number }) {
  return (
    <ol id="timeline" class="timeline" hx-swap-oob="true">
      {events.map((e) => (
        <li class={`timeline__item timeline__item--${e.action.replace(/[^a-z_]/g, "-")}`}>
          <span class="timeline__what">{ACTION_TEXT[e.action] ?? e.action}</span>
          {attemptOf(e) ? <span class="muted"> · {attemptOf(e)}</span> : null}
          <span class="timeline__who">
            by <code>{e.actor}</code>
          </span>
          <RelTime ms={e.createdAt} now={now} />
        </li>
      ))}
    </ol>
  );
}

export function RunSummary({ run, now }: { run: RunRecord; now: number }) {
  const display = displayOf(run, now);
  const reason = run.reasonCode ? explainReason(run.reasonCode, run) : null;
  const reconciled = run.reasonCode !== null && reasonFamily(run.reasonCode) === "lifecycle";
  return (
    <section id="run-summary" class="run-summary" hx-swap-oob="true" data-display={display.kind}>
      <div class="run-summary__status">
        <Badge display={display} />
        <span class="muted">
          attempt {run.attempt} of {run.maxAttempts}
        </span>
      </div>
      {display.kind === "running_stale" || display.kind === "queued_overdue" ? (
        <div class="callout callout--warn" role="status">
          <strong>This run looks stuck.</strong> It is past its deadline and has not been reconciled yet; the tracker or the
          sweep will resolve it. Do not assume it is still working.
        </div>
      ) : null}
      {reason ? (
        <div class={`callout ${reconciled ? "callout--reconciled" : "callout--bad"}`} data-reason-family={reconciled ? "lifecycle" : "execution"}>
          <h2 class="callout__title">
            {reconciled ? "Reconciled by the lifecycle machinery: " : "Failed: "}
            {reason.title}
          </h2>
          {reconciled && run.reconciledBy ? (
            <p>
              The handler never reported an outcome. The outcome was decided by {DETECTOR_TEXT[run.reconciledBy]}.
            </p>
          ) : null}
          <dl class="explain">
            <dt>What happened</dt>
            <dd>{reason.whatHappened}</dd>
            <dt>Side effects</dt>
            <dd>{reason.sideEffects}</dd>
            <dt>What to do</dt>
            <dd>{reason.whatToDo}</dd>
          </dl>
          {run.failureMessage && run.failureMessage !== reason.whatHappened ? (
            <p class="failure-message">
              <span class="muted">Message: </span>
              <span data-failure-message>{run.failureMessage}</span>
            </p>
          ) : null}
        </div>
      ) : run.outcome === "partially_succeeded" && run.failureMessage ? (
        <div class="callout callout--partial">
          <span data-failure-message>{run.failureMessage}</span>
        </div>
      ) : null}
      <ProgressBar progress={run.progress} />
      <dl class="facts">
        <dt>Created</dt>
        <dd>
          <RelTime ms={run.createdAt} now={now} />
        </dd>
        <dt>Started</dt>
        <dd>
          <RelTime ms={run.startedAt} now={now} />
        </dd>
        <dt>Last heartbeat</dt>
        <dd>
          <RelTime ms={run.lastHeartbeatAt} now={now} />
        </dd>
        <dt>Completed</dt>
        <dd>
          <RelTime ms={run.completedAt} now={now} />
        </dd>
      </dl>
    </section>
  );
}

export function RunPoller({ run }: { run: RunRecord }) {
  return run.status !== "completed" ? (
    <div
      id="run-poller"
      hx-get={`/admin/operations/${encodeURIComponent(run.id)}/live`}
      hx-trigger="every 2s"
      hx-swap="none"
      data-polling="on"
      hx-swap-oob="true"
    ></div>
  ) : (
    <div id="run-poller" data-polling="off" hx-swap-oob="true"></div>
  );
}

/** Evidence keeps epoch ms (what the code compares); operators read `…At` fields as ISO times. */
function readableTimes(value: unknown, key = ""): unknown {
  if (typeof value === "number" && /At$/.test(key) && value > 1e12) return new Date(value).toISOString();
  if (Array.isArray(value)) return value.map((v) => readableTimes(v));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, readableTimes(v, k)]));
  }
  return value;
}

function Diagnostics({ run }: { run: RunRecord }) {
  const d = run.diagnostics;
  return (
    <details class="diagnostics">
      <summary>Diagnostics</summary>
      <dl class="facts">
        <dt>Run id</dt>
        <dd>
          <code>{run.id}</code>
        </dd>
        <dt>Workspace</dt>
        <dd>
          <code>{run.workspaceId}</code>
        </dd>
        <dt>Reason code</dt>
        <dd>
          <code>{run.reasonCode ?? "—"}</code>
        </dd>
        <dt>Detector</dt>
        <dd>{d.detectedBy ?? run.reconciledBy ?? "—"}</dd>
        <dt>Initiator</dt>
        <dd>
          <code>{run.initiator}</code>
        </dd>
        {run.idempotencyKey ? (
          <>
            <dt>Idempotency key</dt>
            <dd>
              <code>{run.idempotencyKey}</code>
            </dd>
          </>
        ) : null}
      </dl>
      <h3>Original last error</h3>
      {d.lastError ? (
        <p>
          Attempt {d.lastError.attempt}
          {d.lastError.reasonCode ? (
            <>
              {" "}
              (<code>{d.lastError.reasonCode}</code>)
            </>
          ) : null}
          : <span data-last-error>{d.lastError.message}</span>
        </p>
      ) : (
        <p class="muted">No attempt reported an error.</p>
      )}
      <h3>Attempts</h3>
      <table class="compact">
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Started</th>
            <th scope="col">Ended</th>
            <th scope="col">How</th>
          </tr>
        </thead>
        <tbody>
          {d.attempts.map((a) => (
            <tr>
              <td>{a.attempt}</td>
              <td>{iso(a.startedAt)}</td>
              <td>{a.endedAt ? iso(a.endedAt) : "—"}</td>
              <td>
                {a.ended ?? "—"}
                {a.error ? <span class="muted"> · {a.error}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Thresholds in force</h3>
      <pre class="json">{JSON.stringify(d.thresholds ?? {}, null, 2)}</pre>
      {d.evidence ? (
        <>
          <h3>Evidence</h3>
          <pre class="json">{JSON.stringify(readableTimes(d.evidence), null, 2)}</pre>
        </>
      ) : null}
    </details>
  );
}

export function RunView({
  run,
  events,
  now,
  showDiagnostics,
}: {
  run: RunRecord;
  events: AuditEvent[];
  now: number;
  showDiagnostics: boolean;
}) {
  return (
    <>
      <nav class="crumbs" aria-label="Breadcrumb">
        <a href="/admin/operations" class="link">
          ← Operations
        </a>
      </nav>
      <div class="page-head">
        <h1>
          <code>{run.type}</code> <span class="muted run-id">{run.id}</span>
        </h1>
      </div>
      <RunSummary run={run} now={now} />
      <h2>Timeline</h2>
      <Timeline events={events} now={now} />
      {showDiagnostics ? <Diagnostics run={run} /> : null}
      <RunPoller run={run} />
    </>
  );
}
