/**
 * `OplifeRpc`: the API for other Workers, over a service binding with Workers
 * RPC (https://developers.cloudflare.com/workers/runtime-apis/rpc/). It offers
 * the same operations as the JSON API, through the same action layer
 * (src/api/actions.ts), so validation, workspace scoping, audit actors and
 * problems are the HTTP API's own.
 *
 * In the caller's wrangler.toml:
 *
 * ```toml
 * [[services]]
 * binding = "OPLIFE"
 * service = "oplife"
 * entrypoint = "OplifeRpc"
 * ```
 *
 * Authentication: every method takes a workspace API token first, the same
 * `olt_…` token as `Authorization: Bearer` on HTTP. Why a token and not the
 * binding alone (`ctx.props` set in the caller's config): a service binding
 * is granted to whoever can deploy a Worker on the account, which is not the
 * same as being a member of a workspace; a token names one workspace, can be
 * revoked at once by its owner, and audit events name it as the actor
 * (`api-token:<name>`). Each call is checked like an HTTP request: one D1
 * read, no session to hold or dispose.
 *
 * Answers are `{ ok: true, …the HTTP answer's body }` or
 * `{ ok: false, problem }`, where `problem` is the RFC 9457 body the HTTP API
 * would have answered (`status`, `type`, `title`, `detail`, and `errors[].path`
 * for field errors). A result rather than a thrown error because Workers RPC
 * keeps only an error's name and message across the binding, not its fields.
 * Another workspace's run is a 404 `not-found`, as on HTTP.
 */
import { WorkerEntrypoint } from "cloudflare:workers";
import { z } from "zod";
import { cancelRun, getRun, listRuns, retryRun, runEvents, startRun, type ActionContext, fieldErrors } from "../api/actions";
import { principalForToken } from "../api/auth";
import { ApiProblem, problems, type ProblemBody } from "../api/problem";
import { createRunBody, IDEMPOTENCY_KEY, type RunEventJson, type RunJson } from "../api/schemas";
import { runtimeContract } from "../contract-runtime";
import { log } from "../log";

/**
 * The RFC 9457 problem the HTTP API would answer, with its extensions named:
 * RPC types (`Service<OplifeRpc>`) can only carry serialisable fields, so an
 * open `[key: string]: unknown` would drop the whole branch from the caller's type.
 */
export interface RpcProblem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  /** Field errors (400, 422). */
  errors?: Array<{ path: string; message: string }>;
  /** The run concerned (409 idempotency-key-reused, 503 not-scheduled). */
  runId?: string;
  /** Violated timing rules and their sentences (503 timing-contract-violated). */
  rules?: string[];
  violations?: string[];
  /** When to try again (503 not-scheduled), in seconds. */
  retryAfterSeconds?: number;
}

/** An RPC answer: the HTTP answer's body with `ok: true`, or the problem the HTTP API would answer. */
export type RpcResult<T> = ({ ok: true } & T) | { ok: false; problem: RpcProblem };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const strings = (v: unknown): string[] | undefined => (Array.isArray(v) ? v.map(String) : undefined);

/** The problem body with the extensions RpcProblem names, and no other. */
function rpcProblem(body: ProblemBody): RpcProblem {
  const { type, title, status, detail, instance, errors } = body;
  const { runId, rules, violations, retryAfterSeconds } = body;
  return {
    type,
    title,
    status,
    ...(detail !== undefined ? { detail } : {}),
    ...(instance !== undefined ? { instance } : {}),
    ...(errors !== undefined ? { errors } : {}),
    ...(typeof runId === "string" ? { runId } : {}),
    ...(strings(rules) ? { rules: strings(rules) } : {}),
    ...(strings(violations) ? { violations: strings(violations) } : {}),
    ...(typeof retryAfterSeconds === "number" ? { retryAfterSeconds } : {}),
  };
}

/**
 * A run event as RPC callers' types see it. `metadata` is the same JSON
 * object; typed one level deep because `Service<OplifeRpc>` maps each answer
 * through Workers' serialisable-type check, which `unknown` fails and a
 * recursive JSON type sends too deep.
 */
/**
 * A run as RPC returns it: `RunJson` with `output` typed shallowly (any JSON
 * value). `unknown` would make the RPC stub's types drop the success branch,
 * and a recursive JSON type is too deep for TypeScript to map.
 */
export type RpcRun = Omit<RunJson, "output"> & { output: string | number | boolean | null | object };

export type RpcRunEvent = Omit<RunEventJson, "metadata"> & { metadata: Record<string, string | number | boolean | null | object> };

/** `start`'s request: the HTTP body, `{type, input}`, with `input` plain JSON. */
export type StartRunRequest = { type: string; input?: unknown };
export interface StartRunOptions {
  /** As the HTTP `Idempotency-Key` header: 1–255 visible ASCII characters. */
  idempotencyKey?: string;
}
/** `list`'s filters: the HTTP query's, with `limit` a number (1–100, default 20). */
export interface ListRunsOptions {
  status?: string;
  type?: string;
  display?: string;
  limit?: number;
  cursor?: string;
}

/**
 * The HTTP body arrives as JSON text; an RPC argument is structured-cloned and
 * may hold a Date, a Map or `undefined`, which a stored JSON input would turn
 * into something else without a word. So over RPC the input must be JSON.
 */
const rpcStartRequest = createRunBody.extend({
  input: z.json({ error: "must be JSON: null, booleans, finite numbers, strings, arrays and plain objects" }).optional(),
});

const rpcUnauthorized = () =>
  new ApiProblem(401, "unauthorized", "Unauthorized", "Pass a workspace API token (olt_…) as the first argument.");

export class OplifeRpc extends WorkerEntrypoint<Env> {
  /**
   * Start a run, as `POST /api/v1/runs`.
   * @returns `{ok: true, run, created}` (`created` false for an idempotent replay), or a problem:
   *   401, 400 (Idempotency-Key), 422 (body, unknown type, input; errors[].path),
   *   409 idempotency-key-reused, 503 timing-contract-violated or not-scheduled (replay with the same key).
   */
  async start(token: string, request: StartRunRequest, options: StartRunOptions = {}): Promise<RpcResult<{ run: RpcRun; created: boolean }>> {
    return this.act(token, "start", async (ctx) => {
      const key = options?.idempotencyKey;
      if (key !== undefined && (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key))) {
        throw problems.badRequest("idempotencyKey must be 1–255 visible ASCII characters.", [{ path: "idempotencyKey", message: "invalid" }]);
      }
      const body = rpcStartRequest.safeParse(request);
      if (!body.success) throw problems.validation("The request is not a run request.", fieldErrors(body.error));
      return startRun(ctx, body.data, key ?? null);
    }) as Promise<RpcResult<{ run: RpcRun; created: boolean }>>;
  }

  /** One run, as `GET /api/v1/runs/{id}`. @returns `{ok: true, run}`, or a problem: 401, 404. */
  async get(token: string, runId: string): Promise<RpcResult<{ run: RpcRun }>> {
    return this.act(token, "get", (ctx) => getRun(ctx, String(runId))) as Promise<RpcResult<{ run: RpcRun }>>;
  }

  /** The run's history, as `GET /api/v1/runs/{id}/events`. @returns `{ok: true, events}`, or a problem: 401, 404. */
  async events(token: string, runId: string): Promise<RpcResult<{ events: RpcRunEvent[] }>> {
    return this.act(token, "events", async (ctx) => {
      const { events } = await runEvents(ctx, String(runId));
      // Audit metadata is always written as a JSON object (src/runs/audit-event.ts) and read
      // back with JSON.parse: its values are JSON, which is what RpcRunEvent names.
      return {
        events: events.map((e) => ({ ...e, metadata: (isRecord(e.metadata) ? e.metadata : { value: e.metadata }) as RpcRunEvent["metadata"] })),
      };
    });
  }

  /**
   * The workspace's runs, newest first, as `GET /api/v1/runs`.
   * @returns `{ok: true, runs, nextCursor}` (pass nextCursor as `cursor` for the next page), or a problem: 401, 400.
   */
  async list(token: string, options: ListRunsOptions = {}): Promise<RpcResult<{ runs: RpcRun[]; nextCursor: string | null }>> {
    return this.act(token, "list", (ctx) => {
      // The query schema reads URL values (strings); a number limit is sent as its decimal text.
      const query: unknown =
        typeof options === "object" && options !== null && typeof options.limit === "number" ? { ...options, limit: String(options.limit) } : options;
      return listRuns(ctx, query);
    }) as Promise<RpcResult<{ runs: RpcRun[]; nextCursor: string | null }>>;
  }

  /**
   * Cancel a run, as `POST /api/v1/runs/{id}/cancel` (contract section 7).
   * @returns `{ok: true, run, cancelled}`: `cancelled` true when the run was
   *   queued and is now cancelled, false when it is running and now Cancelling
   *   (it ends cancelled when its attempt stops, or after the cancel grace); or
   *   a problem: 401, 404, 409 run-terminal (nothing changed), 422 (reason),
   *   503 cancel-unavailable (nothing changed; call again).
   */
  async cancel(token: string, runId: string, options: { reason?: string } = {}): Promise<RpcResult<{ run: RpcRun; cancelled: boolean }>> {
    return this.act(token, "cancel", (ctx) => cancelRun(ctx, String(runId), options ?? {})) as Promise<RpcResult<{ run: RpcRun; cancelled: boolean }>>;
  }

  /**
   * Retry a run as a new run, as `POST /api/v1/runs/{id}/retry` (contract section 7).
   * @returns `{ok: true, run, created}` (the new run, `retryOf` = runId), or a
   *   problem: 401, 400 (idempotencyKey), 404, 409 run-not-terminal, 422 (type
   *   gone or input no longer valid), 429, 503 (as `start`).
   */
  async retry(token: string, runId: string, options: StartRunOptions = {}): Promise<RpcResult<{ run: RpcRun; created: boolean }>> {
    return this.act(token, "retry", async (ctx) => {
      const key = options?.idempotencyKey;
      if (key !== undefined && (typeof key !== "string" || !IDEMPOTENCY_KEY.test(key))) {
        throw problems.badRequest("idempotencyKey must be 1–255 visible ASCII characters.", [{ path: "idempotencyKey", message: "invalid" }]);
      }
      return retryRun(ctx, String(runId), key ?? null);
    }) as Promise<RpcResult<{ run: RpcRun; created: boolean }>>;
  }

  /**
   * Authenticate `token`, run `action` in its workspace, and answer its result
   * or its problem. Anything else is logged as one line and answered as a bare
   * 500: no stack or raw error crosses the binding.
   */
  private async act<T extends object>(token: unknown, method: string, action: (ctx: ActionContext) => Promise<T>): Promise<RpcResult<T>> {
    const instance = `rpc:OplifeRpc.${method}`;
    try {
      const principal = typeof token === "string" ? await principalForToken(this.env.DB, token) : null;
      if (!principal) throw rpcUnauthorized();
      const result = await action({ env: this.env, principal, contract: runtimeContract });
      return { ok: true, ...result };
    } catch (error) {
      if (error instanceof ApiProblem) return { ok: false, problem: rpcProblem(error.body(instance)) };
      log.error("rpc.unhandled_error", { method, error });
      return { ok: false, problem: rpcProblem(problems.internal().body(instance)) };
    }
  }
}
