import { Hono } from "hono";
import { DEFAULT_SETTINGS, RULES } from "../lifecycle";
import { getOperation, operationTypes } from "../operations";
import { requireApiToken, type ApiEnv } from "./auth";

/** `/api/v1/policies`: each type's policy and the timing contract report, rule by rule. */
export const policiesApi = new Hono<ApiEnv>();

policiesApi.use("*", requireApiToken);

policiesApi.get("/", (c) => {
  const report = c.get("contract")();
  return c.json({
    types: operationTypes().map((type) => {
      const op = getOperation(type)!;
      return { type, description: op.description, policy: op.policy };
    }),
    settings: DEFAULT_SETTINGS,
    contract: { ok: report.ok, rules: RULES, checks: report.checks },
  });
});
