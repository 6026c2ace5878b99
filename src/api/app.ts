/** The JSON API under /api/v1, with the one error path: problem+json. */
import { OpenAPIHono } from "@hono/zod-openapi";
import { createMiddleware } from "hono/factory";
import { runtimeContract } from "../contract-runtime";
import type { ContractReport } from "../lifecycle";
import { log } from "../log";
import type { ApiEnv } from "./auth";
import { serveOpenApiDocument } from "./openapi";
import { policiesApi } from "./policies";
import { runActionsApi } from "./run-actions";
import { ApiProblem, problemResponse, problems } from "./problem";
import { runsApi } from "./runs";
import { webhookEndpointsApi } from "./webhook-endpoints";

export interface ApiDeps {
  /** The timing contract in force: the runtime's (checked once per isolate) unless a test puts another in force. */
  contract: () => ContractReport;
}

/**
 * On every API answer, errors and 404s included: tenant data must not be
 * kept by shared or browser caches, and a client must not sniff a JSON body
 * into something it would render.
 */
export const apiResponseHeaders = createMiddleware(async (c, next) => {
  await next();
  c.res.headers.set("Cache-Control", "no-store");
  c.res.headers.set("X-Content-Type-Options", "nosniff");
});

export function createApi(deps: ApiDeps = { contract: runtimeContract }): OpenAPIHono<ApiEnv> {
  const api = new OpenAPIHono<ApiEnv>();

  api.use("*", async (c, next) => {
    c.set("contract", deps.contract);
    await next();
  });
  api.route("/runs", runsApi);
  // After runsApi: its token check, registered first, runs first on these paths too.
  api.route("/runs", runActionsApi);
  api.route("/policies", policiesApi);
  api.route("/webhook-endpoints", webhookEndpointsApi);
  serveOpenApiDocument(api);

  api.notFound((c) => problemResponse(problems.notFound("route"), new URL(c.req.url).pathname));

  api.onError((error, c) => {
    const instance = new URL(c.req.url).pathname;
    if (error instanceof ApiProblem) return problemResponse(error, instance);
    log.error("api.unhandled_error", { method: c.req.method, path: instance, error });
    return problemResponse(problems.internal(), instance);
  });
  return api;
}

export const api = createApi();
