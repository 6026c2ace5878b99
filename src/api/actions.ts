/**
 * What a client can do with runs, once, for every way in: the HTTP API's
 * routes (src/api/runs.ts) and the RPC entrypoint (src/rpc/entrypoint.ts) are
 * thin adapters over these functions. Each takes the authenticated principal,
 * scopes every read and write by its workspace, and reports a refusal by
 * throwing an `ApiProblem` (the HTTP API answers it as problem+json; RPC
 * returns its body).
 *
 * Adding an action: write it here as `(ctx, …) => Promise<…>`, call it from
 * a `documented` route (src/api/openapi.ts) and add one method to `OplifeRpc`
 * that calls it through `act()`.
 */
import { cancelRun as cancelRunNow } from "../cancel-run";
import { DEFAULT_SETTINGS, type ContractReport } from "../lifecycle";
import { registeredPolicies } from "../operations";
import { enqueueRun } from "../queue/producer";
import { checkRetry, checkRunRequest, type RunRequestCheck } from "../run-request";
import { runServiceFor } from "../run-service";
import { readSession } from "../db/read-session";
import { displayStateCondition, listRuns as queryRuns, runInWorkspace, runTimeline } from "../runs";
import type { ApiPrincipal } from "./auth";
import { ApiProblem, problems } from "./problem";
import { requireRunCreationAllowed } from "./rate-limit";
import { cancelRunBody, createRunBody, listRunsQuery, type RunEventJson, type RunJson } from "./schemas";
import { eventJson, runJson, runsJson } from "./serialize";
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
 * The problem+json of a refused run request: 422 for an unknown type or an
 * input that fails its schema (field paths under `input`), 503 while the type's
 * timing contract is violated (contract section 5: accepting it would promise
 * a time bound the deployment cannot keep).
 */
export function requestProblem(check: Exclude<RunRequestCheck, { ok: true }>): ApiProblem {
  switch (check.refusal) {
    case "unknown_type":
      return problems.validation(`Unknown operation type "${check.type}".`, [
        // Production may register none (demo.work exists only in local builds): say so rather than list nothing.
        { path: "type", message: check.known.length > 0 ? `must be one of: ${check.known.join(", ")}` : "no operation type is registered in this deployment" },
      ]);
    case "invalid_input":
      return problems.validation(
        `The input is not valid for ${check.type}.`,
        // The registry names the input itself "(root)"; to the client that field is `input`.
        check.issues.map((i) => ({ path: i.path === "(root)" ? "input" : `input.${i.path}`, message: i.message })),
      );
    case "contract_violated":
      return problems.timingContractViolated(check.type, check.violations);
  }
}

/**
 * Record a checked run request and hand it to its tracker: what `startRun` and
 * `retryRun` share. Run creation is rate limited per workspace (src/api/rate-limit.ts),
 * last before the write so a refused request spends none of the allowance.
 * @throws ApiProblem 429 rate-limited; 409 idempotency-key-reused; 503
 *   not-scheduled (with runId) when the tracker could not take it.
 */
async function accept(
  ctx: ActionContext,
  req: { type: string; input: unknown; idempotencyKey: string | null; retryOf?: string },
): Promise<{ run: RunJson; created: boolean }> {
  const { principal, env } = ctx;
  const service = runServiceFor(env.DB);
  await requireRunCreationAllowed(env.RUN_CREATION_LIMITER, service, principal.workspaceId, req.idempotencyKey);
  const { answer, tracked } = await enqueueRun(env, service, {
    workspaceId: principal.workspaceId,
    type: req.type,
    input: req.input,
    idempotencyKey: req.idempotencyKey,
    // The actor as people read it: the token's name (its id is the run's audit metadata's business).
    initiator: `api-token:${principal.tokenName}`,
    actorId: principal.tokenId,
    ...(req.retryOf !== undefined ? { retryOf: req.retryOf } : {}),
  });
  if (!answer.ok) throw problems.idempotencyConflict(answer.conflict.id);
  // Recorded but nobody holds it to dispatch: not accepted. A replay with the
  // same Idempotency-Key hands it over again; otherwise the sweep adopts it.
  if (!tracked) throw problems.notScheduled(answer.run.id);
  // A run this request created is shown as its insert returned it, before anything could retry
  // it: no retries to read. A replay's run may have some.
  const [run] = answer.created
    ? [runJson(answer.run, Date.now(), [])]
    : await runsJson(env.DB, principal.workspaceId, [answer.run], Date.now());
  return { run: run!, created: answer.created };
}

/**
 * Start a run (contract v2 section 4): the request is checked against
 * `createRunBody`, the type's input schema and the type's timing contract
 * (src/run-request.ts), then recorded and handed to its tracker.
 * `idempotencyKey` (already checked against IDEMPOTENCY_KEY by the caller)
 * makes a replay answer the same run.
 *
 * @returns the run, and `created` (false for an idempotent replay).
 * @throws ApiProblem 422 not a run request, an unknown type or invalid input
 *   (errors[].path); 503 timing-contract-violated; as `accept` above.
 */
export async function startRun(
  ctx: ActionContext,
  raw: unknown,
  idempotencyKey: string | null,
): Promise<{ run: RunJson; created: boolean }> {
  const body = createRunBody.safeParse(raw);
  if (!body.success) throw problems.validation("The request body is not a run request.", fieldErrors(body.error));
  const checked = checkRunRequest(body.data.type, body.data.input, ctx.contract());
  if (!checked.ok) throw requestProblem(checked);
  return accept(ctx, { type: checked.type, input: checked.input, idempotencyKey });
}

export const runNotTerminal = (runId: string, status: string) =>
  new ApiProblem(
    409,
    "run-not-terminal",
    "Run not terminal",
    `Run ${runId} is ${status}; only a completed run can be retried as a new run. Wait for it to end, or cancel it first.`,
    { runId, runStatus: status },
  );

/**
 * Retry as a new run (contract section 7): a new run of the original's type
 * and input with `retryOf` = the original, created as `startRun` creates one.
 * The original never changes (it gets a `run.retried` event naming the new run).
 * Only a completed run (src/run-request.ts `checkRetry` says why).
 * @returns the new run, and `created` (false for an idempotent replay).
 * @throws ApiProblem 404 no such run in this workspace; 409 run-not-terminal;
 *   422 the type is gone or no longer takes the input; as `startRun`.
 */
export async function retryRun(ctx: ActionContext, runId: string, idempotencyKey: string | null): Promise<{ run: RunJson; created: boolean }> {
  const original = await runServiceFor(ctx.env.DB).get(ctx.principal.workspaceId, runId);
  // Another workspace's run is indistinguishable from a missing one.
  if (!original) throw problems.notFound("run");
  const checked = checkRetry(original, ctx.contract());
  if (!checked.ok) throw checked.refusal === "not_terminal" ? runNotTerminal(original.id, checked.status) : requestProblem(checked);
  return accept(ctx, { type: checked.type, input: checked.input, idempotencyKey, retryOf: original.id });
}

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

/**
 * Cancel a run (contract section 7). `raw`: the optional body, `{reason?}`
 * (`cancelRunBody`). A queued run ends `cancelled` at once (`cancelled:
 * true`); a running one is now Cancelling (`cancelled: false`): its attempt is
 * told to stop at its next heartbeat, and it ends `cancelled` when it stops or
 * after the cancel grace. A repeated cancel of a Cancelling run writes nothing.
 * @throws ApiProblem 422 a bad body; 404 no such run in this workspace; 409
 *   run-terminal (nothing changed); 503 cancel-unavailable (nothing changed, send it again).
 */
export async function cancelRun(ctx: ActionContext, runId: string, raw: unknown): Promise<{ run: RunJson; cancelled: boolean }> {
  const body = cancelRunBody.safeParse(raw ?? {});
  if (!body.success) throw problems.validation("The request body is not a cancel request.", fieldErrors(body.error));
  const { principal, env } = ctx;
  const answer = await cancelRunNow(env, {
    workspaceId: principal.workspaceId,
    runId,
    actor: `api-token:${principal.tokenName}`,
    actorId: principal.tokenId,
    reason: body.data.reason ?? null,
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
      const [run] = await runsJson(env.DB, principal.workspaceId, [answer.run], Date.now());
      return { run: run!, cancelled: answer.kind === "cancelled" };
    }
  }
}

/**
 * One run of the principal's workspace.
 * @throws ApiProblem 404 when there is no such run in this workspace (another
 *   workspace's run is indistinguishable from a missing one).
 */
export async function getRun(ctx: ActionContext, runId: string): Promise<{ run: RunJson }> {
  const db = readSession(ctx.env.DB);
  const run = await runInWorkspace(db, ctx.principal.workspaceId, runId);
  if (!run) throw problems.notFound("run");
  const [json] = await runsJson(db, run.workspaceId, [run], Date.now());
  return { run: json! };
}

/**
 * The run's history: every audit event about it, oldest first (at most 500),
 * as in Temporal's event history. Secrets in metadata are masked when written.
 * @throws ApiProblem 404 as getRun.
 */
export async function runEvents(ctx: ActionContext, runId: string): Promise<{ events: RunEventJson[] }> {
  const { workspaceId } = ctx.principal;
  const db = readSession(ctx.env.DB);
  const run = await runInWorkspace(db, workspaceId, runId);
  if (!run) throw problems.notFound("run");
  const events = await runTimeline(db, workspaceId, runId);
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
  const db = readSession(ctx.env.DB);
  const page = await queryRuns(db, ctx.principal.workspaceId, {
    limit,
    ...(status ? { status } : {}),
    ...(type ? { type } : {}),
    ...(cursor ? { before: decodeCursor(cursor) } : {}),
    ...(display ? { where: displayStateCondition(display, registeredPolicies(), DEFAULT_SETTINGS, now) } : {}),
  });
  return {
    runs: await runsJson(db, ctx.principal.workspaceId, page.runs, now),
    nextCursor: page.nextCursor ? encodeCursor(page.nextCursor) : null,
  };
}
