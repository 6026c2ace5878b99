/**
 * What an operator can do on a run's page (contract section 7), and what a
 * cancel looks like once asked for. The Cancel form is a disclosure: "Cancel
 * run…" opens it, and only "Cancel this run" posts (with an optional reason),
 * so one stray click does nothing. It is shown to owners and operators, and
 * only while the run can still be cancelled (queued or running, no cancel
 * asked yet). It sits outside the live-refreshed summary, so a refresh never
 * closes it or clears a reason being typed; the refresh replaces it only once
 * the run can no longer be cancelled.
 */
import { actorName, cancelGraceFor, DEFAULT_SETTINGS } from "../../lifecycle";
import { getOperation } from "../../operations";
import { MAX_CANCEL_REASON_LENGTH, type RunRecord } from "../../runs";
import { AbsTime, exactDuration } from "./components";

/** A run an operator may still cancel: live, and no cancel asked for yet. */
export function cancellable(run: RunRecord): boolean {
  return run.status !== "completed" && run.cancelRequestedAt === null;
}

export function RunActions({ run, canCancel, oob }: { run: RunRecord; canCancel: boolean; oob?: boolean }) {
  const show = canCancel && cancellable(run);
  return (
    <div id="run-actions" class="run-actions" {...(oob ? { "hx-swap-oob": "true" } : {})}>
      {show ? (
        <details class="cancel-run">
          <summary class="button button--danger-outline">Cancel run…</summary>
          <form method="post" action={`/admin/operations/${encodeURIComponent(run.id)}/cancel`} class="cancel-run__form">
            {/* Not refreshed while open, so it says what holds whether the run is queued or running by now. */}
            <p class="muted">
              A queued run ends Cancelled at once. A running attempt is told to stop at its next heartbeat, and the run ends
              Cancelled when it stops. Work already done stays done.
            </p>
            <label>
              Reason <span class="muted">(optional, kept in the audit log)</span>
              <input type="text" name="reason" maxlength={MAX_CANCEL_REASON_LENGTH} size={48} autocomplete="off" />
            </label>
            <button type="submit" class="button button--danger">
              Cancel this run
            </button>
          </form>
        </details>
      ) : null}
    </div>
  );
}

/** The callout of a Cancelling run: who asked, when, and by when it ends at the latest. */
export function CancellingCallout({ run }: { run: RunRecord }) {
  if (run.status !== "running" || run.cancelRequestedAt === null) return null;
  const policy = getOperation(run.type)?.policy;
  const grace = policy ? cancelGraceFor(policy, DEFAULT_SETTINGS) : DEFAULT_SETTINGS.cancelGraceMs;
  return (
    <div class="callout callout--cancelling" data-cancelling>
      <strong>Cancel requested</strong> by <span data-cancelled-by>{actorName(run.cancelRequestedBy ?? "an operator")}</span> at{" "}
      <AbsTime ms={run.cancelRequestedAt} />. The attempt is told to stop at its next heartbeat; the run ends Cancelled when it
      stops, or {exactDuration(grace)} after the request if it has not stopped by then.
      {run.diagnostics.cancelReason ? (
        <p class="failure-message">
          <span class="muted">Reason: </span>
          <span data-cancel-reason>{run.diagnostics.cancelReason}</span>
        </p>
      ) : null}
    </div>
  );
}
