/**
 * Operator actions on one run (contract section 7), under `/api/v1/runs/{id}`,
 * each a thin adapter over src/api/actions.ts (which RPC calls too):
 *
 * - `POST /runs/{id}/retry`: retry as a new run, answered exactly as `POST
 *   /runs` answers (202 + Location, 200 replay, 503 + Retry-After); 409
 *   `run-not-terminal` for a live run.
 * - `POST /runs/{id}/cancel` (optional `{reason}`): 200 the run was queued and
 *   is now cancelled; 202 it is running and now Cancelling (202 again, nothing
 *   written, for a repeat); 409 `run-terminal`; 503 `cancel-unavailable`.
 *
 * Authorization: the API token's workspace; another workspace's run is a 404.
 * API tokens carry no role (roles are the admin's), so every token may act.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { cancelRun, retryRun } from "./actions";
import { requireApiToken, type ApiEnv } from "./auth";
import { readJsonBody } from "./body";
import { BEARER, documented, json, problemResponses } from "./openapi";
import { problems } from "./problem";
import { actionContext } from "./runs";
import { cancelRunBody, createRunHeaders, retryRunBody, runEnvelopeSchema, runIdParams } from "./schemas";

/** The largest action body read, in bytes: a retry has no fields and a cancel one short reason, so anything bigger is a mistake. */
const MAX_ACTION_BODY_BYTES = 4 * 1024;

const actionBodyLimit = bodyLimit({
  maxSize: MAX_ACTION_BODY_BYTES,
  onError: () => {
    throw problems.tooLarge(MAX_ACTION_BODY_BYTES);
  },
});

const IDEMPOTENCY_KEY = createRunHeaders.shape["Idempotency-Key"];

/** The request's Idempotency-Key, or null without one. Throws a 400 problem for a malformed key. */
function idempotencyKeyOf(c: Context<ApiEnv>): string | null {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return null;
  if (!IDEMPOTENCY_KEY.safeParse(key).success) {
    throw problems.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", [{ path: "Idempotency-Key", message: "invalid" }]);
  }
  return key;
}

const optionalBody = (schema: z.ZodType) => ({ required: false, content: { "application/json": { schema } } });

const LOCATION = { Location: { description: "The new run's URL: /api/v1/runs/{id}.", required: true, schema: { type: "string" as const } } };

export const runActionsApi = new OpenAPIHono<ApiEnv>();

documented(
  runActionsApi,
  {
    method: "post",
    path: "/{id}/retry",
    summary: "Retry as a new run",
    description:
      "A new run of the original's type and input with retryOf = {id}, answered as POST /runs answers. Only a completed run (any outcome): a live one is a 409 run-not-terminal. The original never changes; it lists the new run in retriedBy.",
    security: BEARER,
    request: { params: runIdParams, headers: createRunHeaders, body: optionalBody(retryRunBody) },
    responses: {
      200: json(runEnvelopeSchema, "An idempotent replay: the run this Idempotency-Key started.", LOCATION),
      202: json(runEnvelopeSchema, "Accepted: the new run is queued and its tracker holds it.", LOCATION),
      ...problemResponses(400, 401, 404, 405, 409, 413, 415, 422, 429, 503),
    },
  },
  requireApiToken,
  actionBodyLimit,
  async (c) => {
    const key = idempotencyKeyOf(c);
    const raw = await readJsonBody(c, { optional: true });
    const body = retryRunBody.safeParse(raw);
    if (!body.success) {
      throw problems.validation(
        "The request body is not valid for this action.",
        body.error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message })),
      );
    }
    const { run, created } = await retryRun(actionContext(c), c.req.param("id") ?? "", key);
    c.header("Location", `/api/v1/runs/${run.id}`);
    return c.json({ run }, created ? 202 : 200);
  },
);

documented(
  runActionsApi,
  {
    method: "post",
    path: "/{id}/cancel",
    summary: "Cancel a run",
    description:
      "A queued run ends cancelled at once (200). A running run is now Cancelling (202): its attempt is told to stop at its next heartbeat, and the run ends cancelled when it stops or after the cancel grace; a repeat answers 202 and writes nothing. A run that has ended is a 409 run-terminal and nothing changes.",
    security: BEARER,
    request: { params: runIdParams, body: optionalBody(cancelRunBody) },
    responses: {
      200: json(runEnvelopeSchema, "The run was queued and is now cancelled."),
      202: json(runEnvelopeSchema, "The run is running and now Cancelling."),
      ...problemResponses(400, 401, 404, 405, 409, 413, 415, 422, 503),
    },
  },
  requireApiToken,
  actionBodyLimit,
  async (c) => {
    const raw = await readJsonBody(c, { optional: true });
    const { run, cancelled } = await cancelRun(actionContext(c), c.req.param("id") ?? "", raw);
    return c.json({ run }, cancelled ? 200 : 202);
  },
);
