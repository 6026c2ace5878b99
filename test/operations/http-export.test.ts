/**
 * `http.export` on the Workers runtime, its upstream mocked at the fetch
 * boundary with Mock Service Worker (test/support/network.ts): the handler on
 * its own (pages, progress, output, each kind of upstream answer), and runs
 * through the real consumer, tracker and D1 (a 429's Retry-After sets when the
 * next attempt is due; a 404 fails the run at once).
 */
import { env } from "cloudflare:workers";
import { http, HttpResponse } from "msw";
import { describe, expect, it } from "vitest";
import type { Progress } from "../../src/lifecycle";
import { httpExport, retryAfterMs } from "../../src/operations/http-export";
import { NonRetryableError, policyFor, registerOperation, RetryableError, type OperationContext, type OperationResult } from "../../src/operations";
import { makeWorkspace } from "../support/fixtures";
import { actionsOf, createRun, currentMessage, deliver, expectAcked, getRun, OPERATIONS, trackerState } from "../support/execution";
import { useNetwork } from "../support/network";

const TYPE = "http.export";
const POLICY = policyFor(TYPE);
/** wrangler.toml's EXPORT_API_BASE_URL: the test Worker's own var. */
const BASE = env.EXPORT_API_BASE_URL;
const network = useNetwork();

/**
 * The test Worker's env with another upstream. `wrangler types` types a var as
 * its literal wrangler.toml value, which another deployment overrides; the
 * cast is confined to this test double.
 */
function envWithBase(base: string): Env {
  return { ...env, EXPORT_API_BASE_URL: base } as unknown as Env;
}

/** Serve `pages` (arrays of items) for `collection` by cursor "p2", "p3", …, checking the query each time. */
function pagedUpstream(collection: string, pages: unknown[][], opts: { base?: string; limit?: number; total?: number } = {}) {
  const seen: string[] = [];
  const handler = http.get(new URL(collection, opts.base ?? BASE).href, ({ request }) => {
    const url = new URL(request.url);
    seen.push(url.search);
    if (opts.limit !== undefined && url.searchParams.get("limit") !== String(opts.limit)) {
      return HttpResponse.json({ error: "unexpected limit" }, { status: 400 });
    }
    const cursor = url.searchParams.get("cursor");
    const index = cursor === null ? 0 : Number(cursor.slice(1)) - 1;
    const items = pages[index];
    if (items === undefined) return HttpResponse.json({ error: "no such cursor" }, { status: 400 });
    const nextCursor = index + 1 < pages.length ? `p${index + 2}` : null;
    return HttpResponse.json({ items, nextCursor, ...(opts.total !== undefined ? { total: opts.total } : {}) });
  });
  return { handler, seen };
}

/** Run the registered type's handler (input validated as in production) with a recording context. */
async function runHandler(input: unknown, overrides: Partial<OperationContext> = {}): Promise<{ result: OperationResult; progress: Progress[] }> {
  const prepared = registerOperation(httpExport).prepare(input);
  if (!prepared.ok) throw new Error(`invalid input: ${JSON.stringify(prepared.issues)}`);
  const progress: Progress[] = [];
  const result = await prepared.run({
    runId: "run_test",
    workspaceId: "ws_test",
    attempt: 1,
    maxAttempts: POLICY.maxAttempts,
    signal: new AbortController().signal,
    env,
    reportProgress: (p) => progress.push(p),
    ...overrides,
  });
  return { result, progress };
}

describe("http.export's handler", () => {
  it("reads every page by cursor, reports progress after each page and returns the counts as its output", async () => {
    const upstream = pagedUpstream("orders", [[1, 2], [3, 4], [5]], { limit: 2, total: 5 });
    network.use(upstream.handler);

    const { result, progress } = await runHandler({ collection: "orders", pageSize: 2 });

    expect(upstream.seen).toEqual(["?limit=2", "?limit=2&cursor=p2", "?limit=2&cursor=p3"]);
    expect(progress.map((p) => p.processed)).toEqual([2, 4, 5]);
    expect(progress[0]).toEqual({ total: 5, processed: 2, succeeded: 2, failed: 0 });
    expect(result).toEqual({
      outcome: "succeeded",
      progress: { total: 5, processed: 5, succeeded: 5, failed: 0 },
      output: { collection: "orders", pages: 3, items: 5 },
    });
  });

  it("reads the upstream from ctx.env, not from a module constant", async () => {
    const other = "https://mirror.example.test/api/";
    const upstream = pagedUpstream("crm/contacts", [["a"]], { base: other });
    network.use(upstream.handler);

    const { result } = await runHandler({ collection: "crm/contacts" }, { env: envWithBase(other) });

    expect(result.output).toEqual({ collection: "crm/contacts", pages: 1, items: 1 });
    expect(upstream.seen).toEqual(["?limit=100"]);
  });

  it("throws a RetryableError carrying Retry-After (seconds) on 429, and without a hint when none is given", async () => {
    network.use(http.get(new URL("orders", BASE).href, () => new HttpResponse(null, { status: 429, statusText: "Too Many Requests", headers: { "retry-after": "120" } })));
    const throttled = await runHandler({ collection: "orders" }).catch((e: unknown) => e);
    expect(throttled).toBeInstanceOf(RetryableError);
    expect((throttled as RetryableError).retryAfterMs).toBe(120_000);
    expect((throttled as Error).message).toBe("The upstream answered 429 Too Many Requests to GET /orders (page 1) (Retry-After: 120 s).");

    network.use(http.get(new URL("orders", BASE).href, () => new HttpResponse(null, { status: 503 })));
    const unavailable = await runHandler({ collection: "orders" }).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(RetryableError);
    expect((unavailable as RetryableError).retryAfterMs).toBeUndefined();
  });

  it("treats 5xx and a network failure as retryable, after the policy's delay", async () => {
    network.use(http.get(new URL("orders", BASE).href, () => new HttpResponse("upstream stack trace", { status: 502 })));
    const bad = await runHandler({ collection: "orders" }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(RetryableError);
    expect((bad as RetryableError).retryAfterMs).toBeUndefined();
    // The upstream's own text is never part of the message.
    expect((bad as Error).message).not.toContain("stack trace");

    network.use(http.get(new URL("orders", BASE).href, () => HttpResponse.error()));
    const down = await runHandler({ collection: "orders" }).catch((e: unknown) => e);
    expect(down).toBeInstanceOf(RetryableError);
    expect((down as Error).message).toBe("Could not reach the upstream for GET /orders (page 1).");
  });

  it("fails at once, with an operator-safe message, on another 4xx or a body that is not a page", async () => {
    network.use(http.get(new URL("orders", BASE).href, () => HttpResponse.json({ secret: "internal detail" }, { status: 403, statusText: "Forbidden" })));
    const { result } = await runHandler({ collection: "orders" });
    expect(result).toMatchObject({ outcome: "failed", message: "The upstream answered 403 Forbidden to GET /orders (page 1); not retried, since a client error repeats." });

    network.use(http.get(new URL("orders", BASE).href, () => HttpResponse.json({ rows: [] })));
    const { result: mismatch } = await runHandler({ collection: "orders" });
    expect(mismatch).toMatchObject({ outcome: "failed", message: "The upstream's answer to GET /orders (page 1) is not a page of {items, nextCursor} (items)." });
  });

  it("stops with a failure at maxPages rather than paging forever", async () => {
    network.use(http.get(new URL("orders", BASE).href, () => HttpResponse.json({ items: [1], nextCursor: "again" })));
    const { result, progress } = await runHandler({ collection: "orders", maxPages: 3 });
    expect(progress).toHaveLength(3);
    expect(result).toMatchObject({ outcome: "failed", message: "Stopped after 3 pages (maxPages) with more to read; 3 items were read." });
  });

  it("fails without retrying when EXPORT_API_BASE_URL is not a URL (a deployment error)", async () => {
    const error = await runHandler({ collection: "orders" }, { env: envWithBase("not a url") }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(NonRetryableError);
    expect((error as Error).message).toContain("EXPORT_API_BASE_URL is not a URL");
  });

  it.for([
    [{ collection: "https://attacker.example/x" }, "collection"],
    [{ collection: "../admin" }, "collection"],
    [{ collection: "orders", pageSize: 0 }, "pageSize"],
    [{ collection: "orders", host: "x" }, "(root)"],
  ] as const)("refuses input %j: a run names a collection, never a host", ([input, path]) => {
    const prepared = registerOperation(httpExport).prepare(input);
    expect(prepared.ok).toBe(false);
    if (!prepared.ok) expect(prepared.issues.map((i) => i.path)).toContain(path);
  });
});

describe("Retry-After", () => {
  it("reads delta-seconds and HTTP dates (RFC 9110 section 10.2.3); anything else is no hint", () => {
    const now = Date.parse("2026-11-30T12:00:00Z");
    expect(retryAfterMs("120", now)).toBe(120_000);
    expect(retryAfterMs(" 0 ", now)).toBe(0);
    expect(retryAfterMs("Mon, 30 Nov 2026 12:01:30 GMT", now)).toBe(90_000);
    expect(retryAfterMs("Mon, 30 Nov 2026 11:00:00 GMT", now)).toBe(0);
    expect(retryAfterMs("soon", now)).toBeUndefined();
    expect(retryAfterMs("-5", now)).toBeUndefined();
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});

describe("http.export runs through the consumer, tracker and D1", () => {
  it("a 429 with Retry-After: the run waits for a retry due exactly that long after the failure, then succeeds", async () => {
    const ws = await makeWorkspace("export");
    const { run, message } = await createRun(ws, { collection: "orders", pageSize: 2 }, TYPE);
    network.use(http.get(new URL("orders", BASE).href, () => new HttpResponse(null, { status: 429, headers: { "retry-after": "120" } }), { once: true }));

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    const waiting = await getRun(run.id);
    expect(waiting).toMatchObject({ status: "queued", attempt: 1, reasonCode: null });
    expect(waiting.diagnostics.lastError).toMatchObject({ attempt: 1, reasonCode: "handler.error" });
    // Due 120 s after the failure was written (not the policy's 5 s), and stale only after that.
    const failedAt = waiting.updatedAt;
    expect(waiting.deadlineAt).toBe(failedAt + 120_000 + POLICY.staleQueuedAfterMs);
    const s = await trackerState(run.id);
    expect(s).toMatchObject({ status: "queued", dispatch: { n: 2, claimed: false, sends: 1, dueAt: failedAt + 120_000 } });

    // The retry (delivered now by hand; the queue would hold it 120 s) reads both pages.
    network.use(pagedUpstream("orders", [[1, 2], [3]]).handler);
    expectAcked(await deliver(OPERATIONS, [{ body: await currentMessage(run.id), attempts: 1 }]));
    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "succeeded",
      attempt: 2,
      progress: { total: 3, processed: 3, succeeded: 3, failed: 0 },
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed", "run.attempt_started", "run.completed"]);
  });

  it("the handler gets the env the consumer was invoked with (ctx.env)", async () => {
    const ws = await makeWorkspace("export");
    const { run, message } = await createRun(ws, { collection: "orders" }, TYPE);
    const mirror = "https://mirror.example.test/v2/";
    network.use(pagedUpstream("orders", [[1]], { base: mirror }).handler);

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], envWithBase(mirror)));

    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", progress: { processed: 1 } });
  });

  it("a 404: the run fails on its first attempt, not retried, saying which page the upstream refused", async () => {
    const ws = await makeWorkspace("export");
    const { run, message } = await createRun(ws, { collection: "orders" }, TYPE);
    network.use(http.get(new URL("orders", BASE).href, () => new HttpResponse("Not here", { status: 404, statusText: "Not Found" })));

    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));

    expect(await getRun(run.id)).toMatchObject({
      status: "completed",
      outcome: "failed",
      attempt: 1,
      maxAttempts: POLICY.maxAttempts,
      reasonCode: "handler.failed",
      failureMessage: "The upstream answered 404 Not Found to GET /orders (page 1); not retried, since a client error repeats.",
    });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });
});
