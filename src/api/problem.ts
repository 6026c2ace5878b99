/**
 * RFC 9457 problem details: the one error shape of the API. Known errors are
 * thrown as `ApiProblem` and mapped by the app's single `onError`; anything
 * else is logged as one structured line and answered as a bare 500 with no
 * detail (never a stack or `String(e)`).
 */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  /** Field errors for 422. */
  errors?: Array<{ path: string; message: string }>;
  [extension: string]: unknown;
}

export class ApiProblem extends Error {
  constructor(
    readonly status: number,
    readonly slug: string,
    readonly title: string,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
    this.name = "ApiProblem";
  }

  body(instance?: string): ProblemBody {
    return {
      type: `https://oplife.dev/problems/${this.slug}`,
      title: this.title,
      status: this.status,
      ...(this.detail !== undefined ? { detail: this.detail } : {}),
      ...(instance !== undefined ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export function problemResponse(problem: ApiProblem, instance?: string): Response {
  const headers = new Headers({ "content-type": "application/problem+json; charset=utf-8" });
  // A 401 MUST carry a challenge (RFC 9110 §15.5.2; RFC 6750 §3 for bearer tokens).
  if (problem.status === 401) headers.set("www-authenticate", 'Bearer realm="oplife-api"');
  const retryAfter = problem.extensions["retryAfterSeconds"];
  if (typeof retryAfter === "number") headers.set("retry-after", String(retryAfter));
  // A 405 MUST list the methods the resource does support (RFC 9110 §15.5.6).
  const allow = problem.extensions.allow;
  if (problem.status === 405 && Array.isArray(allow)) headers.set("allow", allow.join(", "));
  return new Response(JSON.stringify(problem.body(instance)), { status: problem.status, headers });
}

export const problems = {
  notScheduled: (runId: string) =>
    new ApiProblem(
      503,
      "not-scheduled",
      "Run not scheduled",
      "The run was recorded but could not be handed to its scheduler. Retry with the same Idempotency-Key; without one, the sweep schedules it within minutes.",
      { runId, retryAfterSeconds: 5 },
    ),
  unauthorized: () =>
    new ApiProblem(401, "unauthorized", "Unauthorized", "Send a workspace API token as `Authorization: Bearer <token>`."),
  notFound: (what = "resource") => new ApiProblem(404, "not-found", "Not found", `No such ${what}.`),
  methodNotAllowed: (method: string, allow: string[]) =>
    new ApiProblem(405, "method-not-allowed", "Method not allowed", `${method} is not supported here; use ${allow.join(", ")}.`, { allow }),
  unreadableBody: () =>
    new ApiProblem(400, "unreadable-body", "Unreadable body", "The request body could not be read to its end (a broken upload); send it again."),
  malformedJson: () => new ApiProblem(400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."),
  badRequest: (detail: string, errors?: Array<{ path: string; message: string }>) =>
    new ApiProblem(400, "bad-request", "Bad request", detail, errors ? { errors } : {}),
  tooLarge: (limit: number) =>
    new ApiProblem(413, "payload-too-large", "Payload too large", `The request body exceeds ${limit} bytes.`),
  unsupportedMediaType: () =>
    new ApiProblem(415, "unsupported-media-type", "Unsupported media type", "Send the body as application/json."),
  validation: (detail: string, errors: Array<{ path: string; message: string }>) =>
    new ApiProblem(422, "validation-failed", "Validation failed", detail, { errors }),
  idempotencyConflict: (runId: string) =>
    new ApiProblem(
      409,
      "idempotency-key-reused",
      "Idempotency key reused",
      "This Idempotency-Key was used for a different request; a key must be reused only with the same type and input.",
      { runId },
    ),
  /** New runs of a type whose timing rules are violated are refused; accepted runs keep converging (contract section 5). */
  timingContractViolated: (type: string, violations: Array<{ rule: string; description: string }>) =>
    new ApiProblem(
      503,
      "timing-contract-violated",
      "Timing contract violated",
      `New ${type} runs are refused until the deployment's timing contract holds: ${violations.map((v) => v.description).join("; ")}`,
      { rules: [...new Set(violations.map((v) => v.rule))], violations: violations.map((v) => v.description) },
    ),
  internal: () => new ApiProblem(500, "internal", "Internal error", "Something went wrong on our side; it has been logged."),
};
