/**
 * A run's display state as operators read it: the badge, and under it what
 * the state needs said — for a retrying run which attempt failed or was lost
 * and when the next one is due (contract section 6), for a finished one its
 * failure message. The last error's text is diagnostics: only roles that may
 * read diagnostics see it; the others get a sentence that names no detail.
 */
import type { DisplayState, DisplayStateKind } from "../../lifecycle";
import { formatDuration } from "../../lifecycle";
import { displayStateOf } from "../../run-service";
import type { RunRecord } from "../../runs";
import { Badge } from "./components";

export const DISPLAY_LABELS: Record<DisplayStateKind, string> = {
  queued: "Queued",
  retrying: "Retrying",
  queued_overdue: "Queued · overdue",
  running: "Running",
  running_stale: "Running · no heartbeat",
  succeeded: "Succeeded",
  partially_succeeded: "Partially succeeded",
  failed: "Failed",
  failed_reconciled: "Failed · reconciled",
  cancelling: "Cancelling",
  cancelled: "Cancelled",
};

export function displayOf(run: RunRecord, now: number): DisplayState {
  return displayStateOf(run, now);
}

/** How the attempt before a retry ended, from the run's diagnostics. */
export function previousAttempt(run: RunRecord): { how: "failed" | "timed out" | "lost" | "ended"; error: string | null } {
  const n = run.attempt;
  const summary = run.diagnostics.attempts.find((a) => a.attempt === n);
  const lastError = run.diagnostics.lastError?.attempt === n ? run.diagnostics.lastError : undefined;
  if (summary?.ended === "heartbeat lost") return { how: "lost", error: null };
  if (lastError) return { how: lastError.reasonCode === "attempt.timeout" ? "timed out" : "failed", error: lastError.message };
  return { how: "ended", error: null };
}

const HOW_TEXT = {
  failed: "failed",
  "timed out": "timed out",
  lost: "was lost (no heartbeat)",
  ended: "ended without a result",
} as const;

/** "in 4 s", or "now" once the due time has passed (the tracker dispatches it; a consumer has not claimed it yet). */
export function dueText(dueAt: number | null, now: number): string {
  if (dueAt === null) return "soon";
  return dueAt > now ? `in ${formatDuration(dueAt - now + 999)}` : "now";
}

export function excerpt(text: string, max = 90): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** The badge and the line under it. `compact`: the list's one-line excerpts. */
export function RunState({
  run,
  display,
  now,
  showDiagnostics,
  compact,
}: {
  run: RunRecord;
  display: DisplayState;
  now: number;
  showDiagnostics: boolean;
  compact?: boolean;
}) {
  const retry = display.retry;
  const prev = retry ? previousAttempt(run) : null;
  return (
    <div class="state">
      <Badge display={display} />
      {retry && prev ? (
        <div class="state__detail" data-retry>
          <span data-retry-attempt>
            Attempt {retry.afterAttempt} of {run.maxAttempts} {HOW_TEXT[prev.how]}
          </span>
          {" · "}
          <span data-retry-due>next attempt due {dueText(retry.dueAt, now)}</span>
          {prev.error !== null ? (
            showDiagnostics ? (
              <div class="state__error" title={compact ? prev.error : undefined} data-last-error-excerpt>
                {compact ? excerpt(prev.error) : prev.error}
              </div>
            ) : (
              <div class="state__error muted" data-last-error-hidden>
                Its error is in the diagnostics, which owners and operators can read.
              </div>
            )
          ) : null}
        </div>
      ) : null}
      {compact && run.status === "completed" && run.failureMessage ? (
        <div class="row-message" title={run.failureMessage} data-failure-message>
          {excerpt(run.failureMessage)}
        </div>
      ) : null}
    </div>
  );
}
