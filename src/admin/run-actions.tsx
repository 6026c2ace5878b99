/**
 * Operators act on runs from the admin (contract section 7): retry as a new
 * run and cancel, and what links a run to its retries on its page.
 *
 * `POST /admin/operations/{run}/cancel` (owners and operators: `runs:act`; a
 * viewer gets 403, even with a hand-made form; another workspace's run 404;
 * the csrf() Origin check refuses a form posted from elsewhere) is the API's
 * cancel (src/cancel-run.ts), with the signed-in person as the actor.
 *
 * `POST /admin/operations/{run}/retry` (owners and operators: `runs:act`; a
 * viewer gets 403, another workspace's run 404, a cross-origin form 403 from
 * the admin's csrf() Origin check) creates the new run exactly as the API's
 * retry does (src/run-request.ts `checkRetry`, then the producer, which hands
 * it to its tracker) and answers 303 to the new run's page. The form carries an
 * idempotency key made when the page was drawn, so a double click or a resent
 * form makes one run, not two.
 */
import { Hono, type Context } from "hono";
import { runtimeContract } from "../contract-runtime";
import { cancelRun } from "../cancel-run";
import { enqueueRun } from "../queue/producer";
import { checkRetry } from "../run-request";
import { runServiceFor } from "../run-service";
import { MAX_CANCEL_REASON_LENGTH, type RunRecord } from "../runs";
import { can } from "./auth/capabilities";
import { AdminHttpError, requireCapability, type AdminEnv } from "./auth/viewer";

const RUN_ID = /^run_[0-9A-HJKMNP-TV-Z]{26}$/;
/** The form's key: a UUID drawn with the page. Stored as `admin-retry:<uuid>` (the run's Idempotency-Key). */
const FORM_KEY = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** May the viewer act on runs (retry; cancel) in the current workspace? */
export const canActOnRuns = (c: Context<AdminEnv>): boolean => can(c.get("viewer").current.role, "runs:act");

export function createRunActions() {
  const actions = new Hono<AdminEnv>();

  actions.post("/:id/retry", requireCapability("runs:act"), async (c) => {
    const id = c.req.param("id");
    const { user, current } = c.get("viewer");
    const svc = runServiceFor(c.env.DB);
    const original = RUN_ID.test(id) ? await svc.get(current.workspaceId, id) : null;
    if (!original) throw new AdminHttpError(404, "Run not found", "There is no such run in this workspace.");
    const checked = checkRetry(original, runtimeContract());
    if (!checked.ok) throw refusal(checked);
    const form = await c.req.parseBody();
    const formKey = typeof form["idempotencyKey"] === "string" && FORM_KEY.test(form["idempotencyKey"]) ? form["idempotencyKey"] : null;
    const { answer } = await enqueueRun(c.env, svc, {
      workspaceId: current.workspaceId,
      type: checked.type,
      input: checked.input,
      idempotencyKey: formKey ? `admin-retry:${formKey}` : null,
      initiator: `user:${user.email}`,
      actorId: user.id,
      retryOf: original.id,
    });
    if (!answer.ok) throw new AdminHttpError(409, "Form already used", "This form created another run already. Reload the run's page and try again.");
    // Not handed to its tracker (logged by the producer): the run is recorded, and the sweep
    // adopts it at its deadline; its page says where it stands either way.
    return c.redirect(`/admin/operations/${encodeURIComponent(answer.run.id)}`, 303);
  });

  actions.post("/:id/cancel", requireCapability("runs:act"), async (c) => {
    const form = await c.req.parseBody();
    const reason = typeof form.reason === "string" ? form.reason.trim() : "";
    if (reason.length > MAX_CANCEL_REASON_LENGTH) {
      throw new AdminHttpError(400, "Reason too long", `A cancel reason is at most ${MAX_CANCEL_REASON_LENGTH} characters; nothing was cancelled.`);
    }
    const viewer = c.get("viewer");
    const answer = await cancelRun(c.env, {
      workspaceId: viewer.current.workspaceId,
      runId: c.req.param("id"),
      actor: `user:${viewer.user.email}`,
      actorId: viewer.user.id,
      reason: reason === "" ? null : reason,
    });
    switch (answer.kind) {
      case "not_found":
        throw new AdminHttpError(404, "Run not found", "There is no such run in this workspace.");
      case "unavailable":
        throw new AdminHttpError(503, "Cancel not taken", "The run's scheduler could not take the cancel just now; nothing changed. Try again.");
      case "terminal":
        throw new AdminHttpError(409, "Run already ended", "This run has already ended; cancelling it changes nothing.");
      case "cancelled":
      case "cancelling":
        // Post/redirect/get: the run's page shows Cancelling or Cancelled.
        return c.redirect(`/admin/operations/${encodeURIComponent(answer.run.id)}`, 303);
    }
  });

  return actions;
}

function refusal(check: Exclude<ReturnType<typeof checkRetry>, { ok: true }>): AdminHttpError {
  switch (check.refusal) {
    case "not_terminal":
      return new AdminHttpError(409, "Run still live", `This run is ${check.status}. Only a run that has ended can be retried as a new run; wait for it, or cancel it first.`);
    case "unknown_type":
      return new AdminHttpError(422, "Type no longer registered", `No handler is registered for "${check.type}" any more, so a new run of it cannot start.`);
    case "invalid_input":
      return new AdminHttpError(
        422,
        "Input no longer valid",
        `This run's input is not valid for ${check.type} as it is registered now: ${check.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}.`,
      );
    case "contract_violated":
      return new AdminHttpError(503, "New runs of this type are refused", `The timing contract is violated: ${check.violations.map((v) => v.description).join("; ")}.`);
  }
}

/** The "Retry as new run" form of a terminal run, for those who may act. */
export function RetryForm({ run }: { run: RunRecord }) {
  return (
    <form method="post" action={`/admin/operations/${encodeURIComponent(run.id)}/retry`} class="run-actions" data-retry-form>
      <input type="hidden" name="idempotencyKey" value={crypto.randomUUID()} />
      <button type="submit" class="button">
        Retry as new run
      </button>
      <span class="muted"> A new run with the same type and input; this run stays as it is.</span>
    </form>
  );
}

/** The links between a run and its retries: the run it retries, and the runs that retry it (newest first). */
export function RetryLinks({ run, retriedBy }: { run: RunRecord; retriedBy: readonly string[] }) {
  if (run.retryOf === null && retriedBy.length === 0) return null;
  return (
    <dl class="facts retry-links">
      {run.retryOf !== null ? (
        <>
          <dt>Retry of</dt>
          <dd>
            <a class="link" href={`/admin/operations/${encodeURIComponent(run.retryOf)}`} data-retry-of>
              <code>{run.retryOf}</code>
            </a>
          </dd>
        </>
      ) : null}
      {retriedBy.length > 0 ? (
        <>
          <dt>Retried by</dt>
          <dd>
            <ul class="plain-list" data-retried-by>
              {retriedBy.map((id) => (
                <li>
                  <a class="link" href={`/admin/operations/${encodeURIComponent(id)}`}>
                    <code>{id}</code>
                  </a>
                </li>
              ))}
            </ul>
          </dd>
        </>
      ) : null}
    </dl>
  );
}

/** Open on the page up to this many characters of pretty JSON; a longer output starts collapsed. */
const OUTPUT_OPEN_MAX_CHARS = 2_000;

/**
 * What the handler returned (contract section 1), pretty-printed and escaped
 * like every string the views render; collapsible, and collapsed when long.
 * Not masked, unlike the input: it is the run's product, shown as the API
 * returns it (handlers must not put secrets in it, src/operations/types.ts).
 */
export function OutputView({ run }: { run: RunRecord }) {
  if (run.output === null) return null;
  const pretty = JSON.stringify(run.output, null, 2);
  return (
    <details class="input output" open={pretty.length <= OUTPUT_OPEN_MAX_CHARS}>
      <summary>Output</summary>
      <pre class="json" data-output>
        {pretty}
      </pre>
    </details>
  );
}
