/** `/api/v1/runs`: create (idempotent), get, and list with keyset pagination. */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { getRun, listRuns, runEvents, startRun, type ActionContext } from "./actions";
import { requireApiToken, type ApiEnv } from "./auth";
import { readJsonBody, requireJsonContentType, unreadableBody } from "./body";
import { BEARER, documented, json, jsonBody, problemResponses } from "./openapi";
import { ApiProblem, problems } from "./problem";
import {
  createRunBody,
  createRunHeaders,
  IDEMPOTENCY_KEY,
  listRunsQuery,
  runEnvelopeSchema,
  runEventsSchema,
  runIdParams,
  runPageSchema,
} from "./schemas";

export const MAX_BODY_BYTES = 64 * 1024;

export const runsApi = new OpenAPIHono<ApiEnv>();

/** The action layer's view of a request (src/api/actions.ts). */
export function actionContext(c: Context<ApiEnv>): ActionContext {
  return { env: c.env, principal: c.get("principal"), contract: c.get("contract") };
}

runsApi.use("*", requireApiToken);

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw problems.tooLarge(MAX_BODY_BYTES);
  },
});

/**
 * bodyLimit, with a read failure of a streamed (chunked) body answered as
 * unreadableBody: bodyLimit reads such a body itself, before the handler.
 * Errors from after it (the handler's) pass through untouched.
 */
export const readBodyWithinLimit = createMiddleware<ApiEnv>(async (c, next) => {
  let handlerReached = false;
  try {
    return await limitBody(c, async () => {
      handlerReached = true;
      await next();
    });
  } catch (error) {
    if (handlerReached || error instanceof ApiProblem) throw error;
    throw unreadableBody(c, error);
  }
});

const LOCATION = { Location: { description: "The run's URL: /api/v1/runs/{id}.", required: true, schema: { type: "string" as const } } };

documented(
  runsApi,
  {
    method: "post",
    path: "/",
    summary: "Start a run",
    description:
      "Checks the body, the type's input schema and the type's timing contract, records the run and hands it to its tracker. 202 once the tracker holds it. A replay with the same Idempotency-Key answers 200 with the same run.",
    security: BEARER,
    request: { headers: createRunHeaders, body: jsonBody(createRunBody) },
    responses: {
      200: json(runEnvelopeSchema, "An idempotent replay: the run this Idempotency-Key started.", LOCATION),
      202: json(runEnvelopeSchema, "Accepted: the run is queued and its tracker holds it.", LOCATION),
      ...problemResponses(400, 401, 405, 409, 413, 415, 422, 429, 503),
    },
  },
  readBodyWithinLimit,
  async (c) => {
    // Content-Type first: a non-JSON body is a 415 whatever its Idempotency-Key.
    requireJsonContentType(c);
    const key = c.req.header("idempotency-key");
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw problems.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", [
        { path: "Idempotency-Key", message: "invalid" },
      ]);
    }
    const raw = await readJsonBody(c);
    const { run, created } = await startRun(actionContext(c), raw, key ?? null);
    c.header("Location", `/api/v1/runs/${run.id}`);
    return c.json({ run }, created ? 202 : 200);
  },
);

documented(
  runsApi,
  {
    method: "get",
    path: "/{id}",
    summary: "Get a run",
    security: BEARER,
    request: { params: runIdParams },
    responses: { 200: json(runEnvelopeSchema, "The run."), ...problemResponses(401, 404, 405) },
  },
  async (c) => c.json(await getRun(actionContext(c), c.req.param("id") ?? "")),
);

documented(
  runsApi,
  {
    method: "get",
    path: "/{id}/events",
    summary: "A run's history",
    description: "Every audit event about the run, oldest first (at most 500), as in Temporal's event history.",
    security: BEARER,
    request: { params: runIdParams },
    responses: { 200: json(runEventsSchema, "The run's events."), ...problemResponses(401, 404, 405) },
  },
  async (c) => c.json(await runEvents(actionContext(c), c.req.param("id") ?? "")),
);

documented(
  runsApi,
  {
    method: "get",
    path: "/",
    summary: "List runs",
    description: "The workspace's runs, newest first, by keyset pagination: pass nextCursor as cursor for the next page.",
    security: BEARER,
    request: { query: listRunsQuery },
    responses: { 200: json(runPageSchema, "A page of runs."), ...problemResponses(400, 401, 405) },
  },
  async (c) => c.json(await listRuns(actionContext(c), c.req.query())),
);
