import { OpenAPIHono } from "@hono/zod-openapi";
import { DEFAULT_SETTINGS, RULES } from "../lifecycle";
import { getOperation, operationTypes } from "../operations";
import { requireApiToken, type ApiEnv } from "./auth";
import { BEARER, documented, json, problemResponses } from "./openapi";
import { policiesSchema } from "./schemas";

/** `/api/v1/policies`: each type's policy and the timing contract report, rule by rule. */
export const policiesApi = new OpenAPIHono<ApiEnv>();

policiesApi.use("*", requireApiToken);

documented(
  policiesApi,
  {
    method: "get",
    path: "/",
    summary: "Policies and the timing contract",
    description: "Each registered type's lifecycle policy, the system settings, and the timing contract T1–T9 rule by rule.",
    security: BEARER,
    responses: { 200: json(policiesSchema, "The policies and the contract report."), ...problemResponses(401, 405) },
  },
  (c) => {
    const report = c.get("contract")();
    return c.json({
      types: operationTypes().map((type) => {
        const op = getOperation(type)!;
        return { type, description: op.description, policy: op.policy };
      }),
      settings: DEFAULT_SETTINGS,
      contract: { ok: report.ok, rules: RULES, checks: report.checks },
    });
  },
);
