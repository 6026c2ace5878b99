/**
 * `POST /api/v1/runs/{id}/cancel` (contract section 7): an operator's cancel
 * through a workspace API token. Self-contained (its own auth guard, schemas
 * and problems) so other run actions can sit beside it.
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
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { cancelRun } from "../cancel-run";
import { MAX_CANCEL_REASON_LENGTH } from "../runs";
import { requireApiToken, type ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";
import { readBodyWithinLimit, unreadableBody, zodErrors } from "./runs";
import { runJson } from "./serialize";

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

async function readCancelBody(c: Context<ApiEnv>): Promise<CancelRunBody> {
  let text: string;
  try {
    text = await c.req.text();
  } catch (error) {
    throw unreadableBody(c, error);
  }
  // No body at all is a cancel without a reason.
  if (text.trim() === "") return {};
  const contentType = c.req.header("content-type");
  if (contentType && !/^application\/(.+\+)?json\b/i.test(contentType)) throw problems.unsupportedMediaType();
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw problems.malformedJson();
  }
  const body = cancelRunBody.safeParse(raw);
  if (!body.success) throw problems.validation("The request body is not a cancel request.", zodErrors(body.error));
  return body.data;
}

export const runActionsApi = new Hono<ApiEnv>();

runActionsApi.use("*", ensureApiToken);

runActionsApi.post("/:id/cancel", readBodyWithinLimit, async (c) => {
  const body = await readCancelBody(c);
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
      return c.json({ run: runJson(answer.run, Date.now()) }, 200);
    case "cancelling":
      return c.json({ run: runJson(answer.run, Date.now()) }, 202);
  }
});
