/**
 * Accepting a run through the API, shared by `POST /runs` and
 * `POST /runs/{id}/retry` (src/api/run-actions.ts), so both answer the same
 * way: the same Idempotency-Key rules, 422 for an unknown type or an input the
 * type refuses, 503 while the type's timing contract is violated (contract
 * section 5), 202 with `Location` once the run's tracker holds it, 200 for an
 * idempotent replay, 409 for a key reused with another request, and 503 with
 * `Retry-After` when the tracker could not take it.
 */
import type { Context } from "hono";
import { enqueueRun } from "../queue/producer";
import type { RunRequestCheck } from "../run-request";
import { runServiceFor } from "../run-service";
import type { ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";
import { requireRunCreationAllowed } from "./rate-limit";
import { runsJson } from "./serialize";

/** RFC-style opaque key: 1–255 visible ASCII characters. */
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The request's Idempotency-Key, or null without one. Throws a 400 problem for a malformed key. */
export function idempotencyKeyOf(c: Context<ApiEnv>): string | null {
  const key = c.req.header("idempotency-key");
  if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) {
    throw problems.badRequest("Idempotency-Key must be 1–255 visible ASCII characters.", [{ path: "Idempotency-Key", message: "invalid" }]);
  }
  return key ?? null;
}

/**
 * The problem+json of a refused run request: 422 for an unknown type or an
 * input that fails its schema (field paths under `input`), 503 while the type's
 * timing contract is violated.
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
 * Create the run (or find the idempotent replay's) and hand it to its tracker;
 * the answer as described above. `retryOf`: the original run a retry re-drives.
 */
export async function acceptRun(
  c: Context<ApiEnv>,
  req: { type: string; input: unknown; idempotencyKey: string | null; retryOf?: string },
): Promise<Response> {
  const principal = c.get("principal");
  const service = runServiceFor(c.env.DB);
  // Last before the write: a request refused earlier spends none of the workspace's allowance.
  await requireRunCreationAllowed(c.env.RUN_CREATION_LIMITER, service, principal.workspaceId, req.idempotencyKey);
  const { answer, tracked } = await enqueueRun(c.env, service, {
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
  c.header("Location", `/api/v1/runs/${answer.run.id}`);
  // Recorded but nobody holds it to dispatch: not accepted (no 202). A replay with
  // the same Idempotency-Key hands it over again; otherwise the sweep adopts it.
  if (!tracked) throw problems.notScheduled(answer.run.id);
  const [run] = await runsJson(c.env.DB, principal.workspaceId, [answer.run], Date.now());
  return c.json({ run }, answer.created ? 202 : 200);
}
