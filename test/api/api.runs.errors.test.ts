/**
 * Every way a request to the JSON API can be wrong, answered as an RFC 9457
 * problem (application/problem+json with type, title, status, detail), and
 * never as a 500: a table of the known cases, then a generated sweep of
 * malformed requests.
 */
import { env, exports } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_BODY_BYTES } from "../../src/api/runs";
import {
  DEMO_BODY,
  apiClient,
  bodyOf,
  call,
  callWith,
  expectProblem,
  postInit,
  problemSchema,
  recordingQueue,
  request,
  runEnvelope,
  runPage,
  runsInWorkspace,
  seedToken,
  sha256Hex,
  type CallInit,
} from "../support/api";
import { makeWorkspace } from "../support/fixtures";

const PROBLEM = "https://oplife.dev/problems/";
const UNKNOWN_RUN = "run_01JH0000000000000000000000";

async function allRuns(): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs").first<{ n: number }>();
  return row?.n ?? -1;
}

/** Every authenticated route, so a credential check is proven on each. */
const ROUTES: Array<[string, (headers: Record<string, string>) => CallInit & { path: string }]> = [
  ["POST /api/v1/runs", (headers) => ({ path: "/api/v1/runs", ...postInit(undefined, DEMO_BODY, headers) })],
  ["GET /api/v1/runs", (headers) => ({ path: "/api/v1/runs", headers })],
  ["GET /api/v1/runs/:id", (headers) => ({ path: `/api/v1/runs/${UNKNOWN_RUN}`, headers })],
  ["GET /api/v1/policies", (headers) => ({ path: "/api/v1/policies", headers })],
];

async function send(r: CallInit & { path: string }): Promise<Response> {
  const { path, ...init } = r;
  return call(path, init);
}

describe("401: no valid credential", () => {
  const headerCases: Array<[string, (token: string) => Record<string, string> | Promise<Record<string, string>>]> = [
    ["no Authorization header", () => ({})],
    ["a token that was never issued", () => ({ authorization: `Bearer opl_${"0".repeat(48)}` })],
    ["Basic credentials", () => ({ authorization: "Basic dXNlcjpwYXNz" })],
    ["Basic x", () => ({ authorization: "Basic x" })],
    ["a bare Bearer", () => ({ authorization: "Bearer" })],
    ["Bearer with an empty credential", () => ({ authorization: "Bearer " })],
    ["a credential too short to be a token", () => ({ authorization: "Bearer abc" })],
    ["a valid token after a different scheme", (t) => ({ authorization: `Token ${t}` })],
    ["a valid token with trailing junk", (t) => ({ authorization: `Bearer ${t} extra` })],
    ["the stored hash instead of the token", async (t) => ({ authorization: `Bearer ${await sha256Hex(t)}` })],
  ];

  for (const [route, build] of ROUTES) {
    it.each(headerCases)(`${route} with %s`, async (_what, headers) => {
      const { token } = await apiClient("unauth");
      const before = await allRuns();
      const res = await send(build(await headers(token)));
      const problem = await expectProblem(res, 401);
      expect(problem.type).toBe(`${PROBLEM}unauthorized`);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer\b/);
      expect(problem.detail).toMatch(/Bearer/);
      expect(await allRuns()).toBe(before);
    });
  }

  it("a revoked token stops working at once, on every route", async () => {
    const ws = await makeWorkspace("revoked");
    const { tokenId, token } = await seedToken(ws);
    const auth = { authorization: `Bearer ${token}` };
    // Live first: revocation, not a bad seed, is what the 401 below proves.
    expect((await call("/api/v1/runs", { headers: auth })).status).toBe(200);

    await env.DB.prepare("UPDATE api_tokens SET revoked_at = ? WHERE id = ?").bind(Date.now(), tokenId).run();
    for (const [, build] of ROUTES) {
      const problem = await expectProblem(await send(build(auth)), 401);
      expect(problem.type).toBe(`${PROBLEM}unauthorized`);
    }
    expect(await runsInWorkspace(ws)).toBe(0);
  });

  it("a token seeded as revoked is refused", async () => {
    const ws = await makeWorkspace("revoked-seed");
    const { token } = await seedToken(ws, { revoked: true });
    await expectProblem(await call("/api/v1/runs", { token }), 401);
  });

  it("the auth scheme is case-insensitive (RFC 9110 §11.1)", async () => {
    const { token, workspaceId } = await apiClient("scheme-case");
    for (const scheme of ["bearer", "BEARER"]) {
      const res = await call("/api/v1/runs", { headers: { authorization: `${scheme} ${token}` } });
      expect(res.status, scheme).toBe(200);
      expect((await bodyOf(res, runPage)).runs).toEqual([]);
    }
    expect(await runsInWorkspace(workspaceId)).toBe(0);
  });
});

describe("404: not found, and another workspace's run is not found either", () => {
  it("a run of another workspace is a 404 indistinguishable from a missing one (never 403)", async () => {
    const a = await apiClient("tenant-a");
    const b = await apiClient("tenant-b");
    const created = await call("/api/v1/runs", postInit(b.token, DEMO_BODY));
    expect(created.status).toBe(202);
    const { run } = await bodyOf(created, runEnvelope);
    // It exists, for its own workspace.
    expect((await call(`/api/v1/runs/${run.id}`, { token: b.token })).status).toBe(200);

    const foreign = await call(`/api/v1/runs/${run.id}`, { token: a.token });
    const foreignText = await foreign.clone().text();
    const problem = await expectProblem(foreign, 404);
    expect(problem.type).toBe(`${PROBLEM}not-found`);
    expect(foreignText).not.toContain(b.workspaceId);
    expect(foreignText).not.toContain(b.tokenId);
    expect(foreignText).not.toContain("demo.work");

    const missing = await expectProblem(await call(`/api/v1/runs/${UNKNOWN_RUN}`, { token: a.token }), 404);
    const { instance: _fi, ...foreignRest } = problem;
    const { instance: _mi, ...missingRest } = missing;
    expect(foreignRest).toEqual(missingRest);
    expect(problem.instance).toBe(`/api/v1/runs/${run.id}`);
  });

  it.each([
    ["a well-formed id no run has", `/api/v1/runs/${UNKNOWN_RUN}`],
    ["an id that is not a run id", "/api/v1/runs/not-a-run"],
    ["a percent-encoding that does not decode", "/api/v1/runs/%ZZ"],
    ["an id of 5,000 characters", `/api/v1/runs/run_${"A".repeat(5000)}`],
  ])("GET %s → 404 problem", async (_what, path) => {
    const { token } = await apiClient("missing");
    const problem = await expectProblem(await call(path, { token }), 404);
    expect(problem.type).toBe(`${PROBLEM}not-found`);
  });

  it.each([
    ["GET", "/api/v1/nope", false],
    ["GET", "/api/v1/nope", true],
    ["GET", "/api/v1", false],
    ["GET", "/api/v2/runs", true],
    ["GET", "/api/v1/runs/a/b", true],
    // A known path with another method is a 405 (test/api/api.hardening.test.ts).
  ] as const)("%s %s (token: %s) → 404 problem", async (method, path, withToken) => {
    const { token } = await apiClient("route");
    const res = await call(path, { method, ...(withToken ? { token } : {}) });
    const problem = await expectProblem(res, 404);
    expect(problem.type).toBe(`${PROBLEM}not-found`);
    expect(problem.instance).toBe(new URL(path, "https://x").pathname);
  });
});

describe("422: a request that parses but is not a run request", () => {
  const cases: Array<[string, unknown, string[]]> = [
    ["an unknown type", { type: "no.such.type", input: {} }, ["type"]],
    ["a type that is not a string", { type: 42, input: DEMO_BODY.input }, ["type"]],
    ["an empty type", { type: "", input: DEMO_BODY.input }, ["type"]],
    ["a missing type", { input: DEMO_BODY.input }, ["type"]],
    ["steps: 0", { type: "demo.work", input: { steps: 0, stepMs: 0 } }, ["input.steps"]],
    ["steps not an integer", { type: "demo.work", input: { steps: 1.5, stepMs: 0 } }, ["input.steps"]],
    ["steps a huge number", { type: "demo.work", input: { steps: 1e300, stepMs: 0 } }, ["input.steps"]],
    ["failAtStep past the last step", { type: "demo.work", input: { steps: 2, stepMs: 0, failAtStep: 3 } }, ["input.failAtStep"]],
    ["throwTimes without throwAtStep", { type: "demo.work", input: { steps: 2, stepMs: 0, throwTimes: 1 } }, ["input.throwTimes"]],
    ["an extra input field", { type: "demo.work", input: { steps: 2, stepMs: 0, extra: true } }, ["input"]],
    ["a missing input", { type: "demo.work" }, ["input"]],
    ["an input that is an array", { type: "demo.work", input: [1, 2] }, ["input"]],
    ["an extra top-level field", { ...DEMO_BODY, priority: "high" }, ["(root)"]],
    ["a body that is an array", [DEMO_BODY], ["(root)"]],
    ["a body that is a string", "demo.work", ["(root)"]],
    ["a body that is a number", 42, ["(root)"]],
    ["a body that is null", null, ["(root)"]],
  ];

  it.each(cases)("%s → 422 with field errors at %j", async (_what, body, paths) => {
    const client = await apiClient("invalid");
    const res = await call("/api/v1/runs", postInit(client.token, JSON.stringify(body)));
    const problem = await expectProblem(res, 422);
    expect(problem.type).toBe(`${PROBLEM}validation-failed`);
    expect([...new Set(problem.errors?.map((e) => e.path))]).toEqual(paths);
    for (const e of problem.errors ?? []) expect(e.message.length).toBeGreaterThan(0);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("an unknown type's error lists the types that exist", async () => {
    const { token } = await apiClient("unknown-type");
    const problem = await expectProblem(await call("/api/v1/runs", postInit(token, { type: "nope", input: {} })), 422);
    expect(problem.detail).toContain('"nope"');
    expect(problem.errors?.[0]?.message).toContain("demo.work");
  });

  it("an extra input field is named in its error", async () => {
    const { token } = await apiClient("extra-field");
    const body = { type: "demo.work", input: { steps: 2, stepMs: 0, surprise: 1 } };
    const problem = await expectProblem(await call("/api/v1/runs", postInit(token, body)), 422);
    expect(problem.errors?.[0]?.message).toContain("surprise");
  });
});

describe("400, 413, 415: the request body itself", () => {
  it.each([
    ["an unterminated object", "{"],
    ["an empty body", ""],
    ["single quotes", "{'type':'demo.work'}"],
    ["a trailing comma", '{"type":"demo.work",}'],
    ["a number out of JSON's grammar", '{"type":"demo.work","input":{"steps":NaN}}'],
    ["two documents", `${JSON.stringify(DEMO_BODY)}${JSON.stringify(DEMO_BODY)}`],
  ])("malformed JSON (%s) → 400", async (_what, raw) => {
    const client = await apiClient("malformed");
    const problem = await expectProblem(await call("/api/v1/runs", postInit(client.token, raw)), 400);
    expect(problem.type).toBe(`${PROBLEM}malformed-json`);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it.each(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "text/json"])(
    "Content-Type %s → 415, even with a valid JSON body",
    async (contentType) => {
      const client = await apiClient("media");
      const res = await call("/api/v1/runs", postInit(client.token, DEMO_BODY, { "content-type": contentType }));
      const problem = await expectProblem(res, 415);
      expect(problem.type).toBe(`${PROBLEM}unsupported-media-type`);
      expect(await runsInWorkspace(client.workspaceId)).toBe(0);
    },
  );

  /** Valid JSON for a valid run, padded with whitespace to exactly `bytes` bytes. */
  function paddedBody(bytes: number): string {
    const json = JSON.stringify(DEMO_BODY);
    return json + " ".repeat(bytes - json.length);
  }

  it("a body over 64 KiB with a Content-Length → 413, nothing stored", async () => {
    const client = await apiClient("too-large");
    const body = paddedBody(MAX_BODY_BYTES + 1);
    const res = await call("/api/v1/runs", postInit(client.token, body, { "content-length": String(body.length) }));
    const problem = await expectProblem(res, 413);
    expect(problem.type).toBe(`${PROBLEM}payload-too-large`);
    expect(problem.detail).toContain(String(MAX_BODY_BYTES));
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("a streamed body over 64 KiB with no Content-Length → 413, nothing stored", async () => {
    const client = await apiClient("too-large-stream");
    const chunk = new TextEncoder().encode(" ".repeat(8 * 1024));
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 0) controller.enqueue(new TextEncoder().encode(JSON.stringify(DEMO_BODY)));
        else if (sent > 12) controller.close();
        else controller.enqueue(chunk);
        sent++;
      },
    });
    const req = request("/api/v1/runs", { method: "POST", body: stream, headers: { "content-type": "application/json" }, token: client.token });
    expect(req.headers.has("content-length")).toBe(false);
    const res = await exports.default.fetch(req);
    const problem = await expectProblem(res, 413);
    expect(problem.type).toBe(`${PROBLEM}payload-too-large`);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
  });

  it("a body of exactly 64 KiB is accepted; one byte more is not", async () => {
    const client = await apiClient("limit-edge");
    const q = recordingQueue();
    const atLimit = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, paddedBody(MAX_BODY_BYTES)));
    expect(atLimit.status).toBe(202);
    const over = await callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", postInit(client.token, paddedBody(MAX_BODY_BYTES + 1)));
    await expectProblem(over, 413);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
  });

  it("an oversized body from a caller without a token is a 401, not read at all", async () => {
    const res = await call("/api/v1/runs", postInit(undefined, paddedBody(MAX_BODY_BYTES * 2)));
    await expectProblem(res, 401);
  });
});

describe("500: an unexpected failure", () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it("is a problem that discloses nothing, logged as one structured line", async () => {
    const { token } = await apiClient("internal");
    const secret = "D1_SECRET_CONNECTION_STRING_xyz";
    const brokenDb = new Proxy(env.DB, {
      get(target, prop) {
        if (prop === "prepare") {
          return () => {
            throw new Error(`boom: ${secret}`);
          };
        }
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const res = await callWith({ DB: brokenDb }, "/api/v1/runs", { token });
    const text = await res.clone().text();
    const problem = await expectProblem(res, 500);
    expect(problem.type).toBe(`${PROBLEM}internal`);
    expect(text).not.toContain(secret);
    expect(text).not.toContain("boom");
    expect(text).not.toMatch(/at .+:\d+:\d+/);

    const lines = errors.mock.calls.map((c) => String(c[0]));
    const line = lines.find((l) => l.includes("api.unhandled_error"));
    expect(line, lines.join("\n")).toBeDefined();
    expect(JSON.parse(line ?? "{}")).toMatchObject({ level: "error", event: "api.unhandled_error", method: "GET", path: "/api/v1/runs" });
  });
});

describe("no malformed request is a 500", () => {
  const visible = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 300 });
  const nested = fc.integer({ min: 1, max: 30_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth));
  const nestedObject = fc.integer({ min: 1, max: 5_000 }).map((depth) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth));
  const hugeNumber = fc.constantFrom("1e999", "-1e999", "9".repeat(400), "0.".padEnd(500, "1"), "-0", "1e-999");
  const body = fc.oneof(
    fc.string({ maxLength: 200 }),
    fc.string({ unit: "grapheme", maxLength: 200 }),
    fc.json({ maxDepth: 4 }),
    nested,
    nestedObject,
    hugeNumber.map((n) => `{"type":"demo.work","input":{"steps":${n},"stepMs":0}}`),
    fc
      .record({
        type: fc.oneof(fc.constant("demo.work"), fc.string({ unit: "grapheme", maxLength: 300 }), fc.jsonValue({ maxDepth: 1 })),
        input: fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record(
            {
              steps: fc.oneof(fc.integer(), fc.double(), fc.string()),
              stepMs: fc.oneof(fc.integer({ min: -1, max: 1_000_000 }), fc.constant(null)),
              failAtStep: fc.integer({ min: -5, max: 20 }),
              throwTimes: fc.integer({ min: -5, max: 200 }),
              timeoutMs: fc.integer(),
            },
            { requiredKeys: [] },
          ),
        ),
      }, { requiredKeys: [] })
      .map((o) => JSON.stringify(o)),
  );
  const contentType = fc.option(
    fc.oneof(fc.constantFrom("application/json", "application/json; charset=utf-8", "application/problem+json", "text/plain", "application/octet-stream"), visible),
    { nil: undefined },
  );
  const query = fc
    .dictionary(
      fc.oneof(fc.constantFrom("status", "type", "display", "limit", "cursor"), visible),
      fc.oneof(fc.constantFrom("queued", "running_stale", "0", "101", "-1", "1e3", "abc", "", "cnVuXzAx"), fc.string({ unit: "grapheme", maxLength: 250 })),
      { maxKeys: 4 },
    )
    .map((d) => new URLSearchParams(d).toString());
  const target = fc.oneof(
    fc.constant({ method: "POST", path: "/api/v1/runs" }),
    fc.constant({ method: "POST", path: "/api/v1/runs" }),
    query.map((q) => ({ method: "GET", path: `/api/v1/runs?${q}` })),
    fc.string({ unit: "grapheme", maxLength: 100 }).map((id) => ({ method: "GET", path: `/api/v1/runs/${encodeURIComponent(id)}` })),
    visible.map((s) => ({ method: "GET", path: `/api/v1/${s.replaceAll("#", "").replaceAll("?", "")}` })),
    fc.constantFrom("PATCH", "DELETE", "PUT").map((method) => ({ method, path: "/api/v1/runs" })),
  );
  const auth = fc.oneof(
    { weight: 6, arbitrary: fc.constant("valid") },
    { weight: 1, arbitrary: fc.constant("none") },
    { weight: 1, arbitrary: visible.map((v) => `raw:${v}`) },
  );
  const idempotencyKey = fc.option(fc.oneof(visible, fc.string({ minLength: 250, maxLength: 260, unit: fc.constantFrom("a", "b") })), { nil: undefined });

  it("200 generated requests: every answer is < 500 and an error is a problem+json", async () => {
    const client = await apiClient("fuzz");
    const q = recordingQueue();
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(target, auth, contentType, idempotencyKey, body, async (t, a, ct, key, raw) => {
        const headers = new Headers();
        if (a === "valid") headers.set("authorization", `Bearer ${client.token}`);
        else if (a.startsWith("raw:")) headers.set("authorization", a.slice(4));
        if (ct !== undefined) headers.set("content-type", ct);
        if (key !== undefined) headers.set("idempotency-key", key);
        const res = await callWith({ OPERATIONS_QUEUE: q.queue }, t.path, {
          method: t.method,
          headers,
          ...(t.method === "POST" || t.method === "PUT" || t.method === "PATCH" ? { body: raw } : {}),
        });
        seen.add(res.status);
        expect(res.status, `${t.method} ${t.path}`).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json\b/);
          const problem = await bodyOf(res, problemSchema);
          expect(problem.status).toBe(res.status);
        } else {
          expect(res.headers.get("content-type")).toMatch(/^application\/json\b/);
          await res.body?.cancel();
        }
      }),
      { numRuns: 200 },
    );
    // The generator reaches each error branch, not only the first gate.
    for (const status of [400, 401, 404, 415, 422]) expect(seen, [...seen].join(",")).toContain(status);
  });
});
