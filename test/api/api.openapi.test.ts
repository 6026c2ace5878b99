/**
 * GET /api/v1/openapi.json against what the routes actually do:
 * - every route the Worker answers under /api/v1 is in the document, and
 *   every operation in the document is a route (a new undocumented route
 *   fails here);
 * - real answers of every route, successes and problems, have a status, a
 *   media type, a body and the required headers the document lists for them;
 * - bodies, query values and Idempotency-Keys the document forbids are refused
 *   by the route, and nothing is created.
 * The document is read as a client reads it, with a JSON Schema validator
 * (test/support/openapi.ts), not through the zod schemas it came from.
 */
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createApi } from "../../src/api/app";
import { app } from "../../src/app";
import { DEPLOYMENT } from "../../src/generated/deployment";
import { checkTimingContract, DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor, registeredPolicies } from "../../src/operations";
import { RunService } from "../../src/runs";
import { MAX_ENDPOINTS_PER_WORKSPACE } from "../../src/webhooks/endpoints";
import { DEMO_BODY, apiClient, call, callWith, postInit, request, runEnvelope, runsInWorkspace } from "../support/api";
import { newRun } from "../support/runs";
import { delayRecorder, seedEndpoint } from "../support/webhooks";
import {
  expectDocumentedAnswer,
  fetchDocument,
  operation,
  parameterSchema,
  requestBodySchema,
  validatorFor,
  type OpenApiDocument,
} from "../support/openapi";

const BASE = "/api/v1";

/** The Worker's own routes under /api/v1 as `METHOD /path/{param}`: middleware ("ALL", wildcards) is not an operation. */
function appOperations(): string[] {
  const ops = app.routes
    .filter((r) => r.method !== "ALL" && !r.path.includes("*") && r.path.startsWith(`${BASE}/`))
    .map((r) => `${r.method} ${r.path.slice(BASE.length).replaceAll(/:([^/]+)/g, "{$1}")}`);
  return [...new Set(ops)].sort();
}

function documentOperations(doc: OpenApiDocument): string[] {
  return Object.entries(doc.paths)
    .flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

describe("the OpenAPI document", () => {
  it("is served without a token, as OpenAPI 3.1 with the API's base and a bearer scheme", async () => {
    const res = await call(`${BASE}/openapi.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
    const doc = await fetchDocument();
    expect(doc.openapi).toBe("3.1.0");
    expect(doc.servers).toEqual([{ url: BASE }]);
    expect(doc.components.securitySchemes["bearerAuth"]).toMatchObject({ type: "http", scheme: "bearer" });
  });

  it("lists exactly the routes the Worker answers under /api/v1", async () => {
    const doc = await fetchDocument();
    const routes = appOperations();
    // The routes this test knows were there when it was written: the list must not be vacuous.
    expect(routes).toEqual(
      expect.arrayContaining([
        "GET /runs",
        "POST /runs",
        "GET /runs/{id}",
        "GET /runs/{id}/events",
        "GET /policies",
        "POST /webhook-endpoints",
        "GET /webhook-endpoints",
        "GET /webhook-endpoints/{id}",
        "GET /webhook-endpoints/{id}/deliveries",
        "DELETE /webhook-endpoints/{id}",
      ]),
    );
    expect(documentOperations(doc)).toEqual(routes);
  });

  it("asks for the bearer token on every operation but the document itself", async () => {
    const doc = await fetchDocument();
    for (const op of documentOperations(doc)) {
      const [method = "", path = ""] = op.split(" ");
      const security = operation(doc, method, path).security;
      if (path === "/openapi.json") expect(security, op).toBeUndefined();
      else expect(security, op).toEqual([{ bearerAuth: [] }]);
    }
  });
});

describe("real answers match the document", () => {
  it("POST /runs: 202, the 200 replay, 401, 409, 413, 415, 422 and 400", async () => {
    const doc = await fetchDocument();
    const op = operation(doc, "post", "/runs");
    const client = await apiClient("openapi-create");
    const key = { "idempotency-key": "openapi-doc" };

    const created = await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY, key));
    expect(created.status).toBe(202);
    expect(runEnvelope.safeParse(await expectDocumentedAnswer(doc, op, created)).success).toBe(true);
    const replay = await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY, key));
    expect(replay.status).toBe(200);
    await expectDocumentedAnswer(doc, op, replay);

    const problems: Array<[number, Response]> = [
      [401, await call(`${BASE}/runs`, postInit(undefined, DEMO_BODY))],
      [409, await call(`${BASE}/runs`, postInit(client.token, { ...DEMO_BODY, input: { steps: 2, stepMs: 0 } }, key))],
      [413, await call(`${BASE}/runs`, postInit(client.token, { type: "demo.work", input: { pad: "x".repeat(70_000) } }))],
      [415, await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY, { "content-type": "text/plain" }))],
      [422, await call(`${BASE}/runs`, postInit(client.token, { type: "no.such.type" }))],
      [422, await call(`${BASE}/runs`, postInit(client.token, { type: "demo.work", input: { steps: -1 } }))],
      [400, await call(`${BASE}/runs`, postInit(client.token, "{not json"))],
      [400, await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY, { "idempotency-key": "has space" }))],
    ];
    for (const [status, res] of problems) {
      expect(res.status).toBe(status);
      await expectDocumentedAnswer(doc, op, res);
    }
  });

  it("POST /runs: both 503s, not-scheduled with Retry-After and timing-contract-violated", async () => {
    const doc = await fetchDocument();
    const op = operation(doc, "post", "/runs");
    const client = await apiClient("openapi-503");
    const unreachable = new Proxy(env.RUN_TRACKER, {
      get(target, prop) {
        if (prop === "getByName" || prop === "get" || prop === "idFromName") {
          return () => {
            throw new Error("injected: Durable Objects unavailable");
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const notScheduled = await callWith({ RUN_TRACKER: unreachable }, `${BASE}/runs`, postInit(client.token, DEMO_BODY));
    expect(notScheduled.status).toBe(503);
    expect(notScheduled.headers.get("retry-after")).toBe("5");
    expect(op.responses["503"]?.headers?.["Retry-After"]).toBeDefined();
    await expectDocumentedAnswer(doc, op, notScheduled);

    const neverRedelivers = checkTimingContract(
      registeredPolicies(),
      { ...DEPLOYMENT, queueConsumers: DEPLOYMENT.queueConsumers.map((c) => ({ ...c, maxRetries: 0 })) },
      DEFAULT_SETTINGS,
    );
    const refused = await createApi({ contract: () => neverRedelivers }).fetch(request("/runs", postInit(client.token, DEMO_BODY)), env);
    expect(refused.status).toBe(503);
    const body = await expectDocumentedAnswer(doc, op, refused);
    expect(body).toMatchObject({ type: "https://oplife.dev/problems/timing-contract-violated" });
  });

  it("GET /runs/{id}, /runs/{id}/events, /runs and /policies: 200s and their problems", async () => {
    const doc = await fetchDocument();
    const client = await apiClient("openapi-read");
    const other = await apiClient("openapi-other");
    const created = await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY));
    const { run } = runEnvelope.parse(await created.json());
    await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY));

    const cases: Array<[string, string, number, Response]> = [
      ["get", "/runs/{id}", 200, await call(`${BASE}/runs/${run.id}`, { token: client.token })],
      ["get", "/runs/{id}", 404, await call(`${BASE}/runs/${run.id}`, { token: other.token })],
      ["get", "/runs/{id}", 401, await call(`${BASE}/runs/${run.id}`)],
      ["get", "/runs/{id}/events", 200, await call(`${BASE}/runs/${run.id}/events`, { token: client.token })],
      ["get", "/runs/{id}/events", 404, await call(`${BASE}/runs/${run.id}/events`, { token: other.token })],
      ["get", "/runs", 200, await call(`${BASE}/runs?limit=1`, { token: client.token })],
      ["get", "/runs", 200, await call(`${BASE}/runs?status=queued&display=queued&type=demo.work`, { token: client.token })],
      ["get", "/runs", 400, await call(`${BASE}/runs?limit=0x10`, { token: client.token })],
      ["get", "/runs", 400, await call(`${BASE}/runs?cursor=nope`, { token: client.token })],
      ["get", "/policies", 200, await call(`${BASE}/policies`, { token: client.token })],
      ["get", "/policies", 401, await call(`${BASE}/policies`, { token: "olt_not_a_real_token" })],
    ];
    for (const [method, path, status, res] of cases) {
      expect(`${method} ${path} ${res.status}`).toBe(`${method} ${path} ${status}`);
      await expectDocumentedAnswer(doc, operation(doc, method, path), res);
    }
  });
});

const WEBHOOKS = `${BASE}/webhook-endpoints`;

const endpointsIn = async (workspaceId: string) =>
  (await env.DB.prepare("SELECT count(*) AS n FROM webhook_endpoints WHERE workspace_id = ?").bind(workspaceId).first<{ n: number }>())!.n;

describe("real webhook-endpoint answers match the document", () => {
  it("POST /webhook-endpoints: 201 with the secret, 401, 405, 409, 413, 415, 422 and 400", async () => {
    const doc = await fetchDocument();
    const op = operation(doc, "post", "/webhook-endpoints");
    const client = await apiClient("openapi-wh-create");

    const created = await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/doc", description: "doc", eventTypes: ["run.completed"] }));
    expect(created.status).toBe(201);
    expect(await expectDocumentedAnswer(doc, op, created)).toMatchObject({ secret: expect.stringMatching(/^whsec_/) });
    const allTypes = await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/all" }));
    expect(allTypes.status).toBe(201);
    expect(await expectDocumentedAnswer(doc, op, allTypes)).toMatchObject({ endpoint: { description: null, eventTypes: null } });

    const problems: Array<[number, Response]> = [
      [401, await call(WEBHOOKS, postInit(undefined, { url: "https://hooks.example.com/" }))],
      [405, await call(WEBHOOKS, { method: "PUT", token: client.token })],
      [413, await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/", description: "x".repeat(9_000) }))],
      [415, await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/" }, { "content-type": "text/plain" }))],
      [422, await call(WEBHOOKS, postInit(client.token, { url: "ftp://hooks.example.com/" }))],
      [422, await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/", eventTypes: ["run.started"] }))],
      [400, await call(WEBHOOKS, postInit(client.token, "{not json"))],
    ];
    for (let i = await endpointsIn(client.workspaceId); i < MAX_ENDPOINTS_PER_WORKSPACE; i++) await seedEndpoint(client.workspaceId);
    problems.push([409, await call(WEBHOOKS, postInit(client.token, { url: "https://hooks.example.com/one-more" }))]);
    for (const [status, res] of problems) {
      expect(res.status).toBe(status);
      await expectDocumentedAnswer(doc, op, res);
    }
  });

  it("GET /webhook-endpoints, /{id}, /{id}/deliveries (with tries) and DELETE /{id}: their answers and problems", async () => {
    const doc = await fetchDocument();
    const client = await apiClient("openapi-wh-read");
    const other = await apiClient("openapi-wh-other");
    const { id } = await seedEndpoint(client.workspaceId, { eventTypes: ["run.completed"] });
    // A completed run's delivery, with a failed try and a later one logged, as the consumer writes them.
    const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, webhooks: delayRecorder().queue });
    const run = await newRun(svc, client.workspaceId);
    await svc.claim(run.id, 1);
    await svc.complete(run.id, 1, { outcome: "succeeded" });
    const now = Date.now();
    await env.DB.prepare("UPDATE webhook_deliveries SET attempts = 2, last_status_code = 500, last_error = 'Answered HTTP 500.', next_attempt_at = ?, attempt_log = ? WHERE run_id = ?")
      .bind(
        now + 60_000,
        JSON.stringify([
          { attempt: 1, at: now - 20_000, statusCode: null, error: "No answer within 10000 ms.", excerpt: null },
          { attempt: 2, at: now - 5_000, statusCode: 500, error: "Answered HTTP 500.", excerpt: "upstream down" },
        ]),
        run.id,
      )
      .run();

    const deliveries = await call(`${WEBHOOKS}/${id}/deliveries`, { token: client.token });
    expect(deliveries.status).toBe(200);
    const log = await expectDocumentedAnswer(doc, operation(doc, "get", "/webhook-endpoints/{id}/deliveries"), deliveries);
    expect(log).toMatchObject({ deliveries: [{ runId: run.id, status: "pending", tries: [{ attempt: 1 }, { attempt: 2, statusCode: 500 }] }] });

    const cases: Array<[string, string, number, Response]> = [
      ["get", "/webhook-endpoints", 200, await call(WEBHOOKS, { token: client.token })],
      ["get", "/webhook-endpoints", 200, await call(WEBHOOKS, { token: other.token })],
      ["get", "/webhook-endpoints", 401, await call(WEBHOOKS)],
      ["get", "/webhook-endpoints/{id}", 200, await call(`${WEBHOOKS}/${id}`, { token: client.token })],
      ["get", "/webhook-endpoints/{id}", 404, await call(`${WEBHOOKS}/${id}`, { token: other.token })],
      ["get", "/webhook-endpoints/{id}", 401, await call(`${WEBHOOKS}/${id}`, { token: "olt_not_a_real_token" })],
      ["get", "/webhook-endpoints/{id}", 405, await call(`${WEBHOOKS}/${id}`, { method: "PATCH", token: client.token })],
      ["get", "/webhook-endpoints/{id}/deliveries", 404, await call(`${WEBHOOKS}/${id}/deliveries`, { token: other.token })],
      ["get", "/webhook-endpoints/{id}/deliveries", 401, await call(`${WEBHOOKS}/${id}/deliveries`)],
      ["delete", "/webhook-endpoints/{id}", 404, await call(`${WEBHOOKS}/${id}`, { method: "DELETE", token: other.token })],
      ["delete", "/webhook-endpoints/{id}", 401, await call(`${WEBHOOKS}/${id}`, { method: "DELETE" })],
      ["delete", "/webhook-endpoints/{id}", 204, await call(`${WEBHOOKS}/${id}`, { method: "DELETE", token: client.token })],
      ["delete", "/webhook-endpoints/{id}", 404, await call(`${WEBHOOKS}/${id}`, { method: "DELETE", token: client.token })],
      ["get", "/webhook-endpoints/{id}/deliveries", 404, await call(`${WEBHOOKS}/${id}/deliveries`, { token: client.token })],
    ];
    for (const [method, path, status, res] of cases) {
      expect(`${method} ${path} ${res.status}`).toBe(`${method} ${path} ${status}`);
      await expectDocumentedAnswer(doc, operation(doc, method, path), res);
    }
  });
});

describe("what the document forbids, the route refuses", () => {
  it("a POST /runs body outside the documented schema is a 422 and creates nothing", async () => {
    const doc = await fetchDocument();
    const schema = validatorFor(doc, requestBodySchema(operation(doc, "post", "/runs")));
    const client = await apiClient("openapi-bodies");
    // Bodies near the schema's edges: the accepted body itself and with an extra key (a document
    // stricter than the route would forbid them), wrong types, empty or long type names, non-objects.
    const body = fc.oneof(
      fc.constant<unknown>(DEMO_BODY),
      fc
        .tuple(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }))
        .filter(([k]) => k !== "type" && k !== "input")
        .map(([k, v]) => ({ ...DEMO_BODY, [k]: v })),
      fc.jsonValue({ maxDepth: 2 }),
      fc.record(
        { type: fc.oneof(fc.string({ maxLength: 3 }), fc.constant("d".repeat(201)), fc.integer(), fc.constant(null)), input: fc.jsonValue({ maxDepth: 1 }) },
        { requiredKeys: [] },
      ),
      fc.dictionary(fc.constantFrom("type", "input", "Type", "extra"), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 }),
    );
    const forbidden = body.filter((b) => !schema.validate(b).valid);
    await fc.assert(
      fc.asyncProperty(forbidden, async (b) => {
        const res = await call(`${BASE}/runs`, postInit(client.token, JSON.stringify(b)));
        expect(res.status).toBe(422);
        await res.body?.cancel();
      }),
      { numRuns: 40 },
    );
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("a POST /webhook-endpoints body outside the documented schema is a 422 and creates nothing", async () => {
    const doc = await fetchDocument();
    const schema = validatorFor(doc, requestBodySchema(operation(doc, "post", "/webhook-endpoints")));
    const client = await apiClient("openapi-wh-bodies");
    const good = { url: "https://hooks.example.com/property", eventTypes: ["run.completed"] };
    const body = fc.oneof(
      fc.constant<unknown>(good),
      fc
        .tuple(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 1 }))
        .filter(([k]) => !["url", "description", "eventTypes"].includes(k))
        .map(([k, v]) => ({ ...good, [k]: v })),
      fc.jsonValue({ maxDepth: 2 }),
      fc.record(
        {
          url: fc.oneof(fc.constant(good.url), fc.constant(""), fc.constant(`https://hooks.example.com/${"u".repeat(2050)}`), fc.integer(), fc.constant(null)),
          description: fc.oneof(fc.string({ maxLength: 3 }), fc.constant("d".repeat(201)), fc.integer()),
          eventTypes: fc.oneof(fc.constant([]), fc.array(fc.constantFrom("run.completed", "run.started", ""), { maxLength: 3 }), fc.constant("run.completed")),
        },
        { requiredKeys: [] },
      ),
    );
    const forbidden = body.filter((b) => !schema.validate(b).valid);
    await fc.assert(
      fc.asyncProperty(forbidden, async (b) => {
        const res = await call(WEBHOOKS, postInit(client.token, JSON.stringify(b)));
        expect(res.status).toBe(422);
        await res.body?.cancel();
      }),
      { numRuns: 40 },
    );
    expect(await endpointsIn(client.workspaceId)).toBe(0);
  });

  it("a documented-invalid limit or Idempotency-Key is a 400", async () => {
    const doc = await fetchDocument();
    const list = operation(doc, "get", "/runs");
    const limitSchema = validatorFor(doc, parameterSchema(list, "query", "limit"));
    const keySchema = validatorFor(doc, parameterSchema(operation(doc, "post", "/runs"), "header", "Idempotency-Key"));
    const client = await apiClient("openapi-params");

    const badLimit = fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom("0x10", "1e1", " 5", "-1", "1.5")).filter((v) => !limitSchema.validate(v).valid);
    await fc.assert(
      fc.asyncProperty(badLimit, async (limit) => {
        const res = await call(`${BASE}/runs?limit=${encodeURIComponent(limit)}`, { token: client.token });
        expect(res.status).toBe(400);
        await res.body?.cancel();
      }),
      { numRuns: 25 },
    );
    // Header values a Request can carry (no CR/LF/NUL, no surrounding spaces, which fetch trims).
    const badKey = fc
      .string({ minLength: 1, maxLength: 300, unit: fc.constantFrom("a", "Z", "9", "-", " ", "\t", "~") })
      .map((k) => k.trim())
      .filter((k) => k.length > 0 && !keySchema.validate(k).valid);
    await fc.assert(
      fc.asyncProperty(badKey, async (key) => {
        const res = await call(`${BASE}/runs`, postInit(client.token, DEMO_BODY, { "idempotency-key": key }));
        expect(res.status).toBe(400);
        await res.body?.cancel();
      }),
      { numRuns: 25 },
    );
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });
});
