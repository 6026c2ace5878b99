/**
 * An application Worker that hands long work to oplife: `POST /exports`
 * starts a `demo.work` run for the caller's request, `GET /exports/{runId}`
 * reports how it is doing. Both go over the `OPLIFE` service binding with
 * Workers RPC: no HTTP, no public URL, no token in a header.
 *
 * Every oplife method takes the workspace API token first and answers
 * `{ ok: true, … }` or `{ ok: false, problem }` (the RFC 9457 body oplife's
 * HTTP API would answer), so the problem's status can be passed on as is.
 */
import type { OplifeRpc, RpcProblem } from "../../../src/rpc/entrypoint";

export interface CallerEnv {
  /** `[[services]] binding = "OPLIFE"`, entrypoint `OplifeRpc` (wrangler.toml). */
  OPLIFE: Service<OplifeRpc>;
  /** A workspace API token (`olt_…`), set as a secret. */
  OPLIFE_TOKEN: string;
}

/** oplife's answer as this Worker's HTTP answer: the body on success, the problem with its own status otherwise. */
function answer(result: { ok: true } | { ok: false; problem: RpcProblem }, status = 200): Response {
  if (!result.ok) {
    return Response.json(result.problem, { status: result.problem.status, headers: { "content-type": "application/problem+json" } });
  }
  const { ok: _ok, ...body } = result;
  return Response.json(body, { status });
}

export default {
  async fetch(request, env): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/exports" && request.method === "POST") {
      const order: unknown = await request.json().catch(() => null);
      const steps = typeof order === "object" && order !== null && "rows" in order ? Number(order.rows) : 3;
      // The caller's own request id makes a retried request start the same run, not a second one.
      const requestId = request.headers.get("x-request-id");
      const started = await env.OPLIFE.start(
        env.OPLIFE_TOKEN,
        { type: "demo.work", input: { steps, stepMs: 0 } },
        requestId ? { idempotencyKey: `export-${requestId}` } : {},
      );
      return answer(started, started.ok && started.created ? 202 : 200);
    }
    const match = /^\/exports\/([^/]+)$/.exec(url.pathname);
    if (match?.[1] && request.method === "GET") {
      return answer(await env.OPLIFE.get(env.OPLIFE_TOKEN, decodeURIComponent(match[1])));
    }
    if (url.pathname === "/exports" && request.method === "GET") {
      const limit = url.searchParams.get("limit");
      return answer(await env.OPLIFE.list(env.OPLIFE_TOKEN, { type: "demo.work", ...(limit ? { limit: Number(limit) } : {}) }));
    }
    return new Response("Not found", { status: 404 });
  },
} satisfies ExportedHandler<CallerEnv>;
