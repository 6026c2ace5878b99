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
 */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { runServiceFor } from "../run-service";
import { checkRetry } from "../run-request";
import { acceptRun, idempotencyKeyOf, requestProblem } from "./accept";
import { requireApiToken, type ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";

/** A retry's body, optional: nothing to choose yet (the new run takes the original's type and input). */
export const retryRunRequest = z.object({}).strict();

/** The answer to a retry: the new run, as `GET /runs/{id}` shows it (`retryOf` set). Shape: see runJson. */
export const retryRunResponse = z.object({ run: z.looseObject({ id: z.string(), retryOf: z.string() }) });

/** The largest retry body read, in bytes: it has no fields, so anything bigger is a mistake. */
const MAX_ACTION_BODY_BYTES = 1024;

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

export const runActionsApi = new Hono<ApiEnv>();

runActionsApi.post(
  "/:id/retry",
  requireApiToken,
  bodyLimit({
    maxSize: MAX_ACTION_BODY_BYTES,
    onError: () => {
      throw problems.tooLarge(MAX_ACTION_BODY_BYTES);
    },
  }),
  async (c) => {
    const key = idempotencyKeyOf(c);
    await optionalBody(c, retryRunRequest);
    const workspaceId = c.get("principal").workspaceId;
    const original = await runServiceFor(c.env.DB).get(workspaceId, c.req.param("id"));
    // Another workspace's run is indistinguishable from a missing one.
    if (!original) throw problems.notFound("run");
    const checked = checkRetry(original, c.get("contract")());
    if (!checked.ok) throw checked.refusal === "not_terminal" ? runNotTerminal(original.id, checked.status) : requestProblem(checked);
    return acceptRun(c, { type: checked.type, input: checked.input, idempotencyKey: key, retryOf: original.id });
  },
);
