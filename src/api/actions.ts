/**
 * What a client can do with runs, once, for every way in: the HTTP API's
 * routes (src/api/runs.ts) and the RPC entrypoint (src/rpc/entrypoint.ts) are
 * thin adapters over these functions. Each takes the authenticated principal,
 * scopes every read and write by its workspace, and reports a refusal by
 * throwing an `ApiProblem` (the HTTP API answers it as problem+json; RPC
 * returns its body).
 *
 * Adding an action (e.g. cancel, retry): write it here as
 * `(env, principal, …) => Promise<…>`, call it from the route and add one
 * method to `OplifeRpc` that calls it through `act()`.
 */
import { DEFAULT_SETTINGS, describeViolation, violationsFor, type ContractReport } from "../lifecycle";
import { getOperation, operationTypes, registeredPolicies } from "../operations";
import { enqueueRun } from "../queue/producer";
import { runServiceFor } from "../run-service";
import { displayStateCondition, listRuns as queryRuns, runTimeline } from "../runs";
import type { ApiPrincipal } from "./auth";
import { problems } from "./problem";
import { createRunBody, listRunsQuery, type RunEventJson, type RunJson } from "./schemas";
import { eventJson, runJson } from "./serialize";
import type { z } from "zod";

export type StartRunRequest = z.input<typeof createRunBody>;
export type ListRunsQuery = z.input<typeof listRunsQuery>;

export interface ActionContext {
  env: Env;
  principal: ApiPrincipal;
  /** The timing contract in force (src/api/app.ts ApiDeps). */
  contract: () => ContractReport;
}

/** zod issues as the API's field errors: `{path: "a.b", message}`, "(root)" for the value itself. */
export function fieldErrors(error: z.ZodError): Array<{ path: string; message: string }> {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

/**
 * Start a run (contract v2 section 4): the request is checked against
 * `createRunBody`, the type's input schema and the type's timing contract,
 * then recorded and handed to its tracker. `idempotencyKey` (already checked
 * against IDEMPOTENCY_KEY by the caller) makes a replay answer the same run.
 *
 * @returns the run, and `created` (false for an idempotent replay).
 * @throws ApiProblem 422 not a run request, an unknown type or invalid input
 *   (errors[].path); 503 timing-contract-violated; 409 idempotency-key-reused;
 *   503 not-scheduled (with runId) when the tracker could not take it.
 */
export async function startRun(
  ctx: ActionContext,
  raw: unknown,
  idempotencyKey: string | null,
): Promise<{ run: RunJson; created: boolean }> {
  const body = createRunBody.safeParse(raw);
  if (!body.success) throw problems.validation("The request body is not a run request.", fieldErrors(body.error));
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
  const violated = violationsFor(ctx.contract(), op.type);
  if (violated.length > 0) {
    throw problems.timingContractViolated(
      op.type,
      violated.map((v) => ({ rule: v.rule, description: describeViolation(v) })),
    );
  }
  const { principal, env } = ctx;
  const { answer, tracked } = await enqueueRun(env, runServiceFor(env.DB), {
    workspaceId: principal.workspaceId,
    type: op.type,
    input: prepared.input,
    idempotencyKey,
    // The actor as people read it: the token's name (its id is the run's audit metadata's business).
    initiator: `api-token:${principal.tokenName}`,
    actorId: principal.tokenId,
  });
  if (!answer.ok) throw problems.idempotencyConflict(answer.conflict.id);
  // Recorded but nobody holds it to dispatch: not accepted. A replay with the
  // same Idempotency-Key hands it over again; otherwise the sweep adopts it.
  if (!tracked) throw problems.notScheduled(answer.run.id);
  return { run: runJson(answer.run, Date.now()), created: answer.created };
}

/**
 * One run of the principal's workspace.
 * @throws ApiProblem 404 when there is no such run in this workspace (another
 *   workspace's run is indistinguishable from a missing one).
 */
export async function getRun(ctx: ActionContext, runId: string): Promise<{ run: RunJson }> {
  const run = await runServiceFor(ctx.env.DB).get(ctx.principal.workspaceId, runId);
  if (!run) throw problems.notFound("run");
  return { run: runJson(run, Date.now()) };
}

/**
 * The run's history: every audit event about it, oldest first (at most 500),
 * as in Temporal's event history. Secrets in metadata are masked when written.
 * @throws ApiProblem 404 as getRun.
 */
export async function runEvents(ctx: ActionContext, runId: string): Promise<{ events: RunEventJson[] }> {
  const { workspaceId } = ctx.principal;
  const run = await runServiceFor(ctx.env.DB).get(workspaceId, runId);
  if (!run) throw problems.notFound("run");
  const events = await runTimeline(ctx.env.DB, workspaceId, runId);
  return { events: events.map(eventJson) };
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

/**
 * The workspace's runs, newest first, by keyset pagination. `query` is
 * checked against `listRunsQuery` (string values, as in a URL query).
 * @throws ApiProblem 400 invalid query parameters or a cursor this API did not issue.
 */
export async function listRuns(ctx: ActionContext, query: unknown): Promise<{ runs: RunJson[]; nextCursor: string | null }> {
  const q = listRunsQuery.safeParse(query);
  if (!q.success) throw problems.badRequest("Invalid query parameters.", fieldErrors(q.error));
  const now = Date.now();
  const { status, type, display, limit, cursor } = q.data;
  const page = await queryRuns(ctx.env.DB, ctx.principal.workspaceId, {
    limit,
    ...(status ? { status } : {}),
    ...(type ? { type } : {}),
    ...(cursor ? { before: decodeCursor(cursor) } : {}),
    ...(display ? { where: displayStateCondition(display, registeredPolicies(), DEFAULT_SETTINGS, now) } : {}),
  });
  return {
    runs: page.runs.map((r) => runJson(r, now)),
    nextCursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
  };
}
