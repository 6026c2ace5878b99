/**
 * The API's hardening: headers on every answer, 405 with Allow for a known
 * path's other methods, a broken upload answered 400 with a warning (not an
 * unhandled 500), a strictly decimal `limit`, and API tokens as actors by name
 * with their last use recorded at most once a minute.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { LAST_USED_RESOLUTION_MS } from "../../src/tenancy";
import { DEMO_BODY, apiClient, bodyOf, call, callWith, expectProblem, postInit, recordingQueue, runEnvelope, runPage } from "../support/api";
import { capturingConsole } from "../support/logs";

const PROBLEM = "https://oplife.dev/problems/";

describe("API response headers", () => {
  it.each([
    ["a 200", "GET", "/api/v1/runs", true, 200],
    ["a 401", "GET", "/api/v1/runs", false, 401],
    ["a 404 under /api/v1", "GET", "/api/v1/nope", true, 404],
    ["a 404 outside /api/v1", "GET", "/api/v2/runs", true, 404],
    ["a 405", "PUT", "/api/v1/runs", true, 405],
    ["policies", "GET", "/api/v1/policies", true, 200],
  ] as const)("%s carries Cache-Control: no-store and X-Content-Type-Options: nosniff", async (_what, method, path, withToken, status) => {
    const { token } = await apiClient("headers");
    const res = await call(path, { method, ...(withToken ? { token } : {}) });
    expect(res.status).toBe(status);
    expect(res.headers.get("cache-control")).toBe("no-store");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    await res.body?.cancel();
  });
});

describe("405: a known path with a method it does not answer", () => {
  it.each([
    ["PUT", "/api/v1/runs", "GET, HEAD, POST"],
    ["DELETE", "/api/v1/runs", "GET, HEAD, POST"],
    ["PATCH", "/api/v1/runs/run_01JH0000000000000000000000", "GET, HEAD"],
    ["DELETE", "/api/v1/runs/anything", "GET, HEAD"],
    ["POST", "/api/v1/policies", "GET, HEAD"],
  ] as const)("%s %s → 405, Allow: %s", async (method, path, allow) => {
    const { token } = await apiClient("method");
    const res = await call(path, { method, token });
    const problem = await expectProblem(res, 405);
    expect(problem.type).toBe(`${PROBLEM}method-not-allowed`);
    expect(res.headers.get("allow")).toBe(allow);
    expect(problem.detail).toContain(method);
  });

  it("an unknown path stays a 404, and a wrong method without a token is still a 401 first", async () => {
    const { token } = await apiClient("method");
    await expectProblem(await call("/api/v1/nope", { method: "DELETE", token }), 404);
    await expectProblem(await call("/api/v1/runs", { method: "DELETE" }), 401);
  });
});

describe("a broken upload", () => {
  afterEach(() => vi.restoreAllMocks());

  /** A chunked body that breaks after its first chunk, as when the client's connection drops mid-upload. */
  function brokenBody(): ReadableStream<Uint8Array> {
    let sent = false;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (!sent) {
          sent = true;
          controller.enqueue(new TextEncoder().encode('{"type":"demo.work","input":'));
        } else {
          controller.error(new Error("connection reset by peer"));
        }
      },
    });
  }

  it("with a valid token is a 400 problem and one warning, not an unhandled error", async () => {
    const client = await apiClient("broken");
    const q = recordingQueue();
    const errors = vi.spyOn(console, "error");
    const { value: res, json } = await capturingConsole("warn", () =>
      callWith({ OPERATIONS_QUEUE: q.queue }, "/api/v1/runs", {
        method: "POST",
        token: client.token,
        headers: { "content-type": "application/json", "transfer-encoding": "chunked" },
        body: brokenBody(),
      }),
    );
    const problem = await expectProblem(res, 400);
    expect(problem.type).toBe(`${PROBLEM}unreadable-body`);
    expect(json).toEqual([
      expect.objectContaining({ level: "warn", event: "api.body_unreadable", method: "POST", path: "/api/v1/runs", workspaceId: client.workspaceId, error: "connection reset by peer" }),
    ]);
    expect(errors).not.toHaveBeenCalled();
    expect(q.sent).toEqual([]);
  });
});

describe("limit", () => {
  it.each(["0x10", "1e1", " 5", "+5", "5.0", "05.", "", "0", "101", "-1", "١٠"])("rejects %j with a 400 naming limit", async (limit) => {
    const { token } = await apiClient("limit");
    const problem = await expectProblem(await call(`/api/v1/runs?limit=${encodeURIComponent(limit)}`, { token }), 400);
    expect(problem.errors?.map((e) => e.path)).toEqual(["limit"]);
  });

  it("accepts decimal integers from 1 to 100, leading zeros included", async () => {
    const { token } = await apiClient("limit");
    for (const limit of ["1", "100", "007"]) {
      const res = await call(`/api/v1/runs?limit=${limit}`, { token });
      expect(res.status, limit).toBe(200);
      await bodyOf(res, runPage);
    }
  });
});

describe("API tokens as actors", () => {
  const lastUsed = async (tokenId: string) =>
    (await env.DB.prepare("SELECT last_used_at FROM api_tokens WHERE id = ?").bind(tokenId).first<{ last_used_at: number | null }>())?.last_used_at;

  it("a run created through the API names the token by its name in the audit log", async () => {
    const client = await apiClient("actor");
    await env.DB.prepare("UPDATE api_tokens SET name = 'CI deploy bot' WHERE id = ?").bind(client.tokenId).run();
    const res = await callWith({ OPERATIONS_QUEUE: recordingQueue().queue }, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    const { run } = await bodyOf(res, runEnvelope);
    const event = await env.DB.prepare("SELECT actor FROM audit_events WHERE subject_id = ? AND action = 'run.queued'").bind(run.id).first<{ actor: string }>();
    expect(event?.actor).toBe("api-token:CI deploy bot");
  });

  it("records a token's last use at most once a minute", async () => {
    const client = await apiClient("last-used");
    expect(await lastUsed(client.tokenId)).toBeNull();
    const before = Date.now();
    expect((await call("/api/v1/runs", { token: client.token })).status).toBe(200);
    const first = await lastUsed(client.tokenId);
    expect(first).toBeGreaterThanOrEqual(before);

    // Within the minute: no new write.
    const writes = vi.spyOn(env.DB, "prepare");
    expect((await call("/api/v1/runs", { token: client.token })).status).toBe(200);
    expect(await lastUsed(client.tokenId)).toBe(first);
    writes.mockRestore();

    // A use more than a minute after the recorded one is recorded.
    const stale = Date.now() - LAST_USED_RESOLUTION_MS - 1;
    await env.DB.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").bind(stale, client.tokenId).run();
    expect((await call("/api/v1/runs", { token: client.token })).status).toBe(200);
    expect(await lastUsed(client.tokenId)).toBeGreaterThan(stale);
  });
});
