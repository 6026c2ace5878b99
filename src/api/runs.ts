/** `/api/v1/runs`: create (idempotent), get, and list with keyset pagination. */
import { Hono, type Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import { DEFAULT_SETTINGS, describeViolation, DISPLAY_STATES, RUN_STATUSES, violationsFor } from "../lifecycle";
import { getOperation, operationTypes, registeredPolicies } from "../operations";
import { displayStateCondition, listRuns, runTimeline } from "../runs";
import { enqueueRun } from "../queue/producer";
import { runServiceFor } from "../run-service";
import { requireApiToken, type ApiEnv } from "./auth";
import { log } from "../log";
import { ApiProblem, problems } from "./problem";
import { eventJson, runJson } from "./serialize";

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

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

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
    const key = c.req.header("idempotency-key");
    if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
      throw problems.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", [
        { path: "Idempotency-Key", message: "invalid" },
      ]);
    }
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
    const op = getOperation(body.data.type);
    if (!op) {
      throw problems.validation(`Unknown operation type "${body.data.type}".`, [
        { path: "type", message: `must be one of: ${operationTypes().join(", ")}` },
      ]);
    }
    const prepared = op.prepare(body.data.input);
    if (!prepared.ok) {
      throw problems.validation(
        `The input is not valid for ${op.type}.`,
        // The registry names the input itself "(root)"; to the client that field is `input`.
        prepared.issues.map((i) => ({ path: i.path === "(root)" ? "input" : `input.${i.path}`, message: i.message })),
      );
    }
    // A violated contract refuses new work of the type it concerns (contract section 5):
    // accepting it would promise a time bound the deployment cannot keep.
    const violated = violationsFor(c.get("contract")(), op.type);
    if (violated.length > 0) {
      throw problems.timingContractViolated(
        op.type,
        violated.map((v) => ({ rule: v.rule, description: describeViolation(v) })),
      );
    }
    const principal = c.get("principal");
    const { answer, tracked } = await enqueueRun(c.env, runServiceFor(c.env.DB), {
      workspaceId: principal.workspaceId,
      type: op.type,
      input: prepared.input,
      idempotencyKey: key ?? null,
      // The actor as people read it: the token's name (its id is the run's audit metadata's business).
      initiator: `api-token:${principal.tokenName}`,
      actorId: principal.tokenId,
    });
    if (!answer.ok) throw problems.idempotencyConflict(answer.conflict.id);
    c.header("Location", `/api/v1/runs/${answer.run.id}`);
    // Recorded but nobody holds it to dispatch: not accepted (no 202). A replay with
    // the same Idempotency-Key hands it over again; otherwise the sweep adopts it.
    if (!tracked) throw problems.notScheduled(answer.run.id);
    return c.json({ run: runJson(answer.run, Date.now()) }, answer.created ? 202 : 200);
  },
);

runsApi.get("/:id", async (c) => {
  const run = await runServiceFor(c.env.DB).get(c.get("principal").workspaceId, c.req.param("id"));
  // Another workspace's run is indistinguishable from a missing one.
  if (!run) throw problems.notFound("run");
  return c.json({ run: runJson(run, Date.now()) });
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
    runs: page.runs.map((r) => runJson(r, now)),
    nextCursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
  });
});
