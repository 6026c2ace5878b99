/**
 * /admin/operations/{run}: status with the operator-safe explanation of its
 * reason code, progress, the run's input (redacted), the audit timeline, and
 * collapsed diagnostics. A reconciled failure reads differently from a normal
 * one: it says the machinery decided, which detector, and keeps the original
 * error beside it. Thresholds are the run's own (recorded when its attempts
 * ran, and its per-run timeout), not the type's policy as it is today.
 */
import { explainReason, reasonFamily, redactMetadata, type Detector, type ReasonExplanation } from "../../lifecycle";
import { getOperation } from "../../operations";
import type { AuditEvent, RunRecord } from "../../runs";
import { AbsTime, CopyButton, exactDuration, humanTime, ProgressBar, RelTime } from "./components";
import { displayOf, RunState } from "./state";
import { OutputView, RetryForm, RetryLinks } from "../run-actions";
import { CancellingCallout, RunActions } from "./run-actions";

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
  "run.attempt_lost": "Attempt lost (no heartbeat), dispatched again",
  "run.redispatched": "Dispatched again (nobody had claimed it)",
  "run.reconciled": "Reconciled",
  "run.late_result_discarded": "Late result discarded",
  "run.retried": "Retried as a new run",
  "run.cancel_requested": "Cancel requested",
  "run.cancelled": "Cancelled",
};

const OUTCOME_TEXT: Record<string, string> = {
  succeeded: "succeeded",
  partially_succeeded: "partially succeeded",
  failed: "failed",
};

function metadataOf(e: AuditEvent): Record<string, unknown> {
  const m = e.metadata;
  return m && typeof m === "object" && !Array.isArray(m) ? (m as Record<string, unknown>) : {};
}

function attemptOf(e: AuditEvent): string | null {
  const a = metadataOf(e).attempt;
  return typeof a === "number" ? `attempt ${a}` : null;
}

/**
 * A `run.completed` event reads as its outcome, and its dot has the outcome's
 * colour: a failed run's timeline never ends on a green "Completed".
 */
function eventLook(e: AuditEvent): { text: string; outcome: string | null } {
  const base = ACTION_TEXT[e.action] ?? e.action;
  if (e.action !== "run.completed") return { text: base, outcome: null };
  const outcome = metadataOf(e).outcome;
  return typeof outcome === "string" && OUTCOME_TEXT[outcome]
    ? { text: `${base}: ${OUTCOME_TEXT[outcome]}`, outcome }
    : { text: base, outcome: null };
}

export function Timeline({ events, now }: { events: AuditEvent[]; now: number }) {
  return (
    <ol id="timeline" class="timeline" hx-swap-oob="morph">
      {events.map((e) => {
        const look = eventLook(e);
        return (
          <li
            id={`event-${e.id}`}
            class={`timeline__item timeline__item--${e.action.replace(/[^a-z_]/g, "-")}${look.outcome ? ` timeline__item--outcome-${look.outcome}` : ""}`}
          >
            <span class="timeline__what">{look.text}</span>
            {attemptOf(e) ? <span class="muted"> · {attemptOf(e)}</span> : null}
            <span class="timeline__who">
              by <code>{e.actor}</code>
            </span>
            <RelTime ms={e.createdAt} now={now} />
          </li>
        );
      })}
    </ol>
  );
}

/**
 * The attempt timeout in force for this run: the type's `attemptTimeoutMs`
 * of its input (capped by the policy, as the registry applies it), else the
 * policy's, else the one recorded in its diagnostics.
 */
export function runTimeout(run: RunRecord): { ms: number | null; own: boolean; policyMs: number | null } {
  const op = getOperation(run.type);
  const recorded = run.diagnostics.thresholds?.timeoutMs;
  const policyMs = op?.policy.timeoutMs ?? (typeof recorded === "number" ? recorded : null);
  const prepared = op?.prepare(run.input);
  if (prepared?.ok) return { ms: prepared.timeoutMs, own: policyMs !== null && prepared.timeoutMs < policyMs, policyMs };
  return { ms: policyMs, own: false, policyMs };
}

/**
 * The explanation of the run's reason. For a timeout caused by the run's own
 * (per-input) timeout, the advice is about that timeout, not the type's.
 */
function explanationOf(run: RunRecord): ReasonExplanation | null {
  if (!run.reasonCode) return null;
  const reason = explainReason(run.reasonCode, run);
  if (run.reasonCode !== "attempt.timeout") return reason;
  const t = runTimeout(run);
  if (t.ms === null) return reason;
  const limit = t.own
    ? `this run's own timeout of ${exactDuration(t.ms)} (set by its input; the type allows up to ${exactDuration(t.policyMs!)})`
    : `the type's timeout of ${exactDuration(t.ms)}`;
  return {
    ...reason,
    whatHappened: `Attempt ${run.attempt} of ${run.maxAttempts} ran longer than ${limit} and was aborted; the run ended there.`,
    whatToDo: t.own
      ? "Check why it ran so long (input size, a slow dependency); start a new run with a larger timeout in its input, or split the work."
      : reason.whatToDo,
  };
}

export function RunSummary({ run, now, showDiagnostics, canAct }: { run: RunRecord; now: number; showDiagnostics: boolean; canAct: boolean }) {
  const display = displayOf(run, now);
  const reason = explanationOf(run);
  const family = run.reasonCode !== null ? reasonFamily(run.reasonCode) : null;
  const reconciled = family === "lifecycle";
  const cancelled = family === "operator";
  // A timeout's stored message ("Attempt 1 of 3 failed: …") reads as if more attempts followed; the explanation says it right.
  const message = run.reasonCode === "attempt.timeout" ? null : run.failureMessage;
  return (
    <section id="run-summary" class="run-summary" hx-swap-oob="morph" data-display={display.kind} data-label={display.label}>
      <div class="run-summary__status">
        <RunState run={run} display={display} now={now} showDiagnostics={showDiagnostics} />
        {/* A retrying run's state already says which attempt ended and which comes next. */}
        {display.retry ? null : (
          <span class="muted">
            attempt {run.attempt} of {run.maxAttempts}
          </span>
        )}
      </div>
      {display.kind === "running_stale" || display.kind === "queued_overdue" ? (
        <div class="callout callout--warn">
          <strong>This run looks stuck.</strong> It is past its deadline and has not been reconciled yet; the tracker or the
          sweep will resolve it. Do not assume it is still working.
        </div>
      ) : null}
      <CancellingCallout run={run} />
      {reason ? (
        <div
          class={`callout ${reconciled ? "callout--reconciled" : cancelled ? "callout--cancelled" : "callout--bad"}`}
          data-reason-family={family ?? "execution"}
        >
          <h2 class="callout__title">
            {reconciled ? "Reconciled by the lifecycle machinery: " : cancelled ? "" : "Failed: "}
            {cancelled ? display.label : reason.title}
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
          {message && message !== reason.whatHappened ? (
            <p class="failure-message">
              <span class="muted">Message: </span>
              <span data-failure-message>{message}</span>
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
          <TimeFact ms={run.createdAt} now={now} />
        </dd>
        <dt>Started</dt>
        <dd>{run.startedAt !== null ? <TimeFact ms={run.startedAt} now={now} /> : <span class="muted">not started yet</span>}</dd>
        <dt>Last heartbeat</dt>
        <dd>{run.lastHeartbeatAt !== null ? <TimeFact ms={run.lastHeartbeatAt} now={now} /> : <span class="muted">none</span>}</dd>
        <dt>Completed</dt>
        <dd>{run.completedAt !== null ? <TimeFact ms={run.completedAt} now={now} /> : <span class="muted">not yet</span>}</dd>
      </dl>
      {/* Here, not beside the heading: the summary is redrawn live, so both appear when the run ends. */}
      <OutputView run={run} />
      {canAct && run.status === "completed" ? <RetryForm run={run} /> : null}
    </section>
  );
}

/** "2026-11-30 09:42:42.123 UTC (3 min ago)". */
function TimeFact({ ms, now }: { ms: number; now: number }) {
  return (
    <>
      <AbsTime ms={ms} /> <span class="muted">(<RelTime ms={ms} now={now} />)</span>
    </>
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

/** Epoch ms from 2001 to 2100: what a time field of evidence holds (a count or a duration never reaches it). */
const EPOCH_MS = { min: 978_307_200_000, max: 4_102_444_800_000 };

/**
 * An evidence or threshold value as operators read it: times as dates,
 * `…Ms` durations in human units with the exact ms beside them.
 */
export function readableValue(key: string, value: unknown): string {
  if (typeof value === "number") {
    if (/Ms$/.test(key)) return `${exactDuration(value)}${Math.abs(value) >= 1_000 ? ` (${value} ms)` : ""}`;
    if (/Seconds$/.test(key)) return exactDuration(value * 1_000);
    if (Number.isInteger(value) && value >= EPOCH_MS.min && value <= EPOCH_MS.max) return humanTime(value);
    return String(value);
  }
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** "staleQueuedAfterMs" → "stale queued after". */
function words(key: string): string {
  const w = key.replace(/(Ms|Seconds)$/, "").replace(/([a-z0-9])([A-Z])/g, "$1 $2").toLowerCase();
  return w.charAt(0).toUpperCase() + w.slice(1);
}

function KeyValues({ entries, attr }: { entries: Array<[string, unknown, string?]>; attr: string }) {
  return (
    <dl class="facts" {...{ [attr]: "" }}>
      {entries.map(([k, v, note]) => (
        <>
          <dt>
            {words(k)} <code class="muted">{k}</code>
          </dt>
          <dd data-key={k}>
            {readableValue(k, v)}
            {note ? <span class="muted"> · {note}</span> : null}
          </dd>
        </>
      ))}
    </dl>
  );
}

/** The thresholds in force for this run: those recorded on it, with its own attempt timeout. */
function thresholdEntries(run: RunRecord): Array<[string, unknown, string?]> {
  const recorded = run.diagnostics.thresholds ?? getOperation(run.type)?.policy ?? {};
  const t = runTimeout(run);
  const entries: Array<[string, unknown, string?]> = Object.entries(recorded).filter(([k]) => k !== "timeoutMs" && k !== "queue");
  if (t.ms !== null) {
    entries.unshift(["timeoutMs", t.ms, t.own ? `this run's own, from its input (the type's is ${exactDuration(t.policyMs!)})` : "the type's"]);
  }
  return entries;
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
              <td>
                <AbsTime ms={a.startedAt} />
              </td>
              <td>{a.endedAt ? <AbsTime ms={a.endedAt} /> : "—"}</td>
              <td>
                {a.ended ?? "—"}
                {a.error ? <span class="muted"> · {a.error}</span> : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Thresholds in force for this run</h3>
      <KeyValues entries={thresholdEntries(run)} attr="data-thresholds" />
      {d.evidence ? (
        <>
          <h3>Evidence</h3>
          <KeyValues entries={Object.entries(d.evidence)} attr="data-evidence" />
        </>
      ) : null}
    </details>
  );
}

/** The run's input as accepted, with secret-looking keys and values masked (the same redaction as audit metadata). */
function Input({ run }: { run: RunRecord }) {
  return (
    <details class="input" open>
      <summary>Input</summary>
      <pre class="json" data-input>
        {JSON.stringify(redactMetadata(run.input), null, 2)}
      </pre>
    </details>
  );
}

export function RunView({
  run,
  events,
  now,
  showDiagnostics,
  canAct,
  retriedBy,
}: {
  run: RunRecord;
  events: AuditEvent[];
  now: number;
  showDiagnostics: boolean;
  /** May the viewer act on runs (owners, operators): shows "Retry as new run" once the run has ended. */
  canAct: boolean;
  /** Ids of the runs that retry this one, newest first. */
  retriedBy: readonly string[];
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
        <CopyButton value={run.id} what={`run id ${run.id}`} />
      </div>
      <RetryLinks run={run} retriedBy={retriedBy} />
      <RunActions run={run} canCancel={canAct} />
      <RunSummary run={run} now={now} showDiagnostics={showDiagnostics} canAct={canAct} />
      <Input run={run} />
      <h2>Timeline</h2>
      <Timeline events={events} now={now} />
      {showDiagnostics ? <Diagnostics run={run} /> : null}
      <RunPoller run={run} />
    </>
  );
}
