/**
 * Operator actions on one run (contract section 7), under `/api/v1/runs/{id}`.
 *
 * `POST /runs/{id}/retry` — retry as a new run: a new run of the original's
 * type and input, with `retryOf` = the original's id, created exactly as
 * `POST /runs` creates one (src/api/accept.ts: the input validated against
 * the type as registered now, the timing contract, Idempotency-Key, 202 once
 * its tracker holds it, 503 with `Retry-After` when it could not). The
 * original is not changed (terminal is forever); its JSON lists the new run in
 * `retriedBy`, and it gets a `run.retried` audit event naming it.
 *
 * Only a terminal run may be retried (409 `run-not-terminal` otherwise); a
 * run that succeeded may be (src/run-request.ts, `checkRetry`, says why).
 *
 * Authorization: the API token's workspace; another workspace's run is a 404.
 * API tokens carry no role (roles are the admin's), so every token may act.
 *

 * `POST /api/v1/runs/{id}/cancel` (contract section 7): an operator's cancel
 * through a workspace API token.
 *
 * Answers, always with `{run}` as it is after the call:
 * - `200` the run was queued and is now completed/cancelled;
 * - `202` the run is running and is now Cancelling: its attempt is told to stop
 *   at its next heartbeat and the run ends `cancelled` when it stops, or after
 *   the cancel grace. A repeated cancel of a Cancelling run answers `202` again
 *   and writes nothing;
 * - `409` problem `run-terminal`: the run had already ended; nothing changed;
 * - `404` no such run in the token's workspace; `400`/`413`/`415`/`422` a bad
 *   body; `503` problem `cancel-unavailable` (with `Retry-After`): the run's
 *   tracker could not take the cancel now, nothing changed, send it again.
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { cancelRun } from "../cancel-run";
import { runServiceFor } from "../run-service";
import { checkRetry } from "../run-request";
import { MAX_CANCEL_REASON_LENGTH } from "../runs";
import { acceptRun, idempotencyKeyOf, requestProblem } from "./accept";
import { requireApiToken, type ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";
import { runsJson } from "./serialize";

/** A retry's body, optional: nothing to choose yet (the new run takes the original's type and input). */
export const retryRunRequest = z.object({}).strict();

/** The answer to a retry: the new run, as `GET /runs/{id}` shows it (`retryOf` set). Shape: see runJson. */
export const retryRunResponse = z.object({ run: z.looseObject({ id: z.string(), retryOf: z.string() }) });

/** The largest action body read, in bytes: a retry has no fields and a cancel one short reason, so anything bigger is a mistake. */
const MAX_ACTION_BODY_BYTES = 4 * 1024;

export const runNotTerminal = (runId: string, status: string) =>
  new ApiProblem(
    409,
    "run-not-terminal",
    "Run not terminal",
    `Run ${runId} is ${status}; only a completed run can be retried as a new run. Wait for it to end, or cancel it first.`,
    { runId, runStatus: status },
  );

/**
 * An optional JSON body checked against `schema`: none (or an empty one) is
 * `{}`. 415 for a body that is not JSON, 400 for malformed JSON or a broken
 * upload, 422 for fields the action does not take.
 */
async function optionalBody<S extends z.ZodType>(c: Context<ApiEnv>, schema: S): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await c.req.text();
  } catch {
    throw problems.unreadableBody();
  }
  if (text.trim() === "") return schema.parse({});
  const contentType = c.req.header("content-type");
  if (contentType && !/^application\/(.+\+)?json\b/i.test(contentType)) throw problems.unsupportedMediaType();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw problems.malformedJson();
  }
  const body = schema.safeParse(raw);
  if (!body.success) {
    throw problems.validation(
      "The request body is not valid for this action.",
      body.error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message })),
    );
  }
  return body.data;
}

/** The request body: optional as a whole, and so is its `reason` (kept in the audit events). */
export const cancelRunBody = z
  .object({
    reason: z.string().trim().min(1).max(MAX_CANCEL_REASON_LENGTH).optional(),
  })
  .strict();
export type CancelRunBody = z.infer<typeof cancelRunBody>;

/** The answer's body (200 and 202): the run as `GET /runs/{id}` shows it, after the cancel. */
export const cancelRunAnswer = z.object({
  run: z
    .object({
      id: z.string(),
      status: z.enum(["queued", "running", "completed"]),
      outcome: z.string(),
      displayState: z.string(),
      cancelRequestedAt: z.string().nullable(),
      cancelRequestedBy: z.string().nullable(),
    })
    .passthrough(),
});

export const runActionProblems = {
  terminal: (runId: string, status: string, outcome: string) =>
    new ApiProblem(409, "run-terminal", "Run already ended", `The run has already ended (${outcome}); cancelling it changes nothing.`, {
      runId,
      // Not `status`: that member is the problem's HTTP status (RFC 9457 section 3.1).
      runStatus: status,
      outcome,
    }),
  cancelUnavailable: (runId: string) =>
    new ApiProblem(
      503,
      "cancel-unavailable",
      "Cancel not taken",
      "The run's scheduler could not take the cancel just now; nothing changed. Send it again.",
      { runId, retryAfterSeconds: 5 },
    ),
};

/** The API token of the request, unless an enclosing app's middleware has checked it already. */
const ensureApiToken = createMiddleware<ApiEnv>(async (c, next) => {
  if (c.get("principal")) return next();
  return requireApiToken(c, next);
});

export const runActionsApi = new Hono<ApiEnv>();

runActionsApi.use("*", ensureApiToken);
const actionBodyLimit = bodyLimit({
  maxSize: MAX_ACTION_BODY_BYTES,
  onError: () => {
    throw problems.tooLarge(MAX_ACTION_BODY_BYTES);
  },
});

runActionsApi.post("/:id/retry", actionBodyLimit, async (c) => {
  const key = idempotencyKeyOf(c);
  await optionalBody(c, retryRunRequest);
  const workspaceId = c.get("principal").workspaceId;
  const original = await runServiceFor(c.env.DB).get(workspaceId, c.req.param("id"));
  // Another workspace's run is indistinguishable from a missing one.
  if (!original) throw problems.notFound("run");
  const checked = checkRetry(original, c.get("contract")());
  if (!checked.ok) throw checked.refusal === "not_terminal" ? runNotTerminal(original.id, checked.status) : requestProblem(checked);
  return acceptRun(c, { type: checked.type, input: checked.input, idempotencyKey: key, retryOf: original.id });
});

runActionsApi.post("/:id/cancel", actionBodyLimit, async (c) => {
  const body = await optionalBody(c, cancelRunBody);
  const principal = c.get("principal");
  const runId = c.req.param("id");
  const answer = await cancelRun(c.env, {
    workspaceId: principal.workspaceId,
    runId,
    actor: `api-token:${principal.tokenName}`,
    actorId: principal.tokenId,
    reason: body.reason ?? null,
  });
  switch (answer.kind) {
    case "not_found":
      throw problems.notFound("run");
    case "unavailable":
      throw runActionProblems.cancelUnavailable(runId);
    case "terminal":
      throw runActionProblems.terminal(answer.run.id, answer.run.status, answer.run.outcome);
    case "cancelled":
    case "cancelling": {
      const [run] = await runsJson(c.env.DB, principal.workspaceId, [answer.run], Date.now());
      return c.json({ run }, answer.kind === "cancelled" ? 200 : 202);
    }
  }
});
