/** `/api/v1/runs`: create (idempotent), get, and list with keyset pagination. */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { DEFAULT_SETTINGS, DISPLAY_STATES, RUN_STATUSES } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { displayStateCondition, listRuns, runTimeline } from "../runs";
import { runServiceFor } from "../run-service";
import { checkRunRequest } from "../run-request";
import { acceptRun, idempotencyKeyOf, requestProblem } from "./accept";
import { requireApiToken, type ApiEnv } from "./auth";
import { log } from "../log";
import { ApiProblem, problems } from "./problem";
import { eventJson, runsJson } from "./serialize";

export const MAX_BODY_BYTES = 64 * 1024;

const createBody = z
  .object({
    type: z.string().min(1).max(200),
    input: z.unknown().optional(),
  })
  .strict();

const listQuery = z
  .object({
    status: z.enum(RUN_STATUSES).optional(),
    type: z.string().min(1).max(200).optional(),
    display: z.enum(DISPLAY_STATES).optional(),
    // Decimal digits only: Number() would also take "0x10", "1e1" and " 5".
    limit: z
      .string()
      .regex(/^[0-9]{1,6}$/, "must be a decimal integer")
      .transform(Number)
      .pipe(z.number().int().min(1).max(100))
      .default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export function zodErrors(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/** Cursors are opaque to clients: base64url of the last id seen. */
function encodeCursor(id: string): string {
  return btoa(id).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
}

function decodeCursor(cursor: string): string {
  try {
    const id = atob(cursor.replaceAll("-", "+").replaceAll("_", "/"));
    if (/^run_[0-9A-HJKMNP-TV-Z]{26}$/.test(id)) return id;
  } catch {
    // fall through: an undecodable cursor is the client's error, reported below
  }
  throw problems.badRequest("The cursor is not one this API issued.", [{ path: "cursor", message: "invalid cursor" }]);
}

export const runsApi = new Hono<ApiEnv>();

runsApi.use("*", requireApiToken);

const limitBody = bodyLimit({
  maxSize: MAX_BODY_BYTES,
  onError: () => {
    throw problems.tooLarge(MAX_BODY_BYTES);
  },
});

/** A body that breaks while it is read is the client's failure: a 400 and a warning, not an internal error. */
export function unreadableBody(c: Context<ApiEnv>, error: unknown): ApiProblem {
  log.warn("api.body_unreadable", { method: c.req.method, path: new URL(c.req.url).pathname, workspaceId: c.get("principal").workspaceId, error });
  return problems.unreadableBody();
}

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

runsApi.post(
  "/",
  readBodyWithinLimit,
  async (c) => {
    const contentType = c.req.header("content-type");
    if (contentType && !/^application\/(.+\+)?json\b/i.test(contentType)) throw problems.unsupportedMediaType();
    const key = idempotencyKeyOf(c);
    let text: string;
    try {
      text = await c.req.text();
    } catch (error) {
      throw unreadableBody(c, error);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw problems.malformedJson();
    }
    const body = createBody.safeParse(raw);
    if (!body.success) throw problems.validation("The request body is not a run request.", zodErrors(body.error));
    const checked = checkRunRequest(body.data.type, body.data.input, c.get("contract")());
    if (!checked.ok) throw requestProblem(checked);
    return acceptRun(c, { type: checked.type, input: checked.input, idempotencyKey: key });
  },
);

runsApi.get("/:id", async (c) => {
  const run = await runServiceFor(c.env.DB).get(c.get("principal").workspaceId, c.req.param("id"));
  // Another workspace's run is indistinguishable from a missing one.
  if (!run) throw problems.notFound("run");
  const [json] = await runsJson(c.env.DB, run.workspaceId, [run], Date.now());
  return c.json({ run: json });
});

/**
 * The run's history: every audit event about it, oldest first (at most 500),
 * as in Temporal's event history. Secrets in metadata are masked when written.
 */
runsApi.get("/:id/events", async (c) => {
  const workspaceId = c.get("principal").workspaceId;
  const runId = c.req.param("id");
  const run = await runServiceFor(c.env.DB).get(workspaceId, runId);
  if (!run) throw problems.notFound("run");
  const events = await runTimeline(c.env.DB, workspaceId, runId);
  return c.json({ events: events.map(eventJson) });
});

runsApi.get("/", async (c) => {
  const q = listQuery.safeParse(c.req.query());
  if (!q.success) throw problems.badRequest("Invalid query parameters.", zodErrors(q.error));
  const now = Date.now();
  const { status, type, display, limit, cursor } = q.data;
  const page = await listRuns(c.env.DB, c.get("principal").workspaceId, {
    limit,
    ...(status ? { status } : {}),
    ...(type ? { type } : {}),
    ...(cursor ? { before: decodeCursor(cursor) } : {}),
    ...(display ? { where: displayStateCondition(display, registeredPolicies(), DEFAULT_SETTINGS, now) } : {}),
  });
  return c.json({
    runs: await runsJson(c.env.DB, c.get("principal").workspaceId, page.runs, now),
    nextCursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
  });
});
