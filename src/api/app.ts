/** The JSON API under /api/v1, with the one error path: problem+json. */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { log } from "../log";
import type { ApiEnv } from "./auth";
import { policiesApi } from "./policies";
import { ApiProblem, problemResponse, problems } from "./problem";
import { runsApi } from "./runs";

export const api = new Hono<ApiEnv>();

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

api.route("/runs", runsApi);
api.route("/policies", policiesApi);

api.notFound((c) => problemResponse(problems.notFound("route"), new URL(c.req.url).pathname));

api.onError((error, c) => {
  const instance = new URL(c.req.url).pathname;
  if (error instanceof ApiProblem) return problemResponse(error, instance);
  log.error("api.unhandled_error", { method: c.req.method, path: instance, error });
  return problemResponse(problems.internal(), instance);
});
