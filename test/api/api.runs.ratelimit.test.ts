/**
 * POST /api/v1/runs under the per-workspace run-creation limit
 * (src/api/rate-limit.ts): 429 problem+json with Retry-After, nothing
 * written, idempotent replays still answered, keyed by workspace.
 *
 * The local simulator of the Rate Limiting binding counts in windows aligned
 * to the wall clock (miniflare's RateLimiterObject), so exhausting it would
 * pass or fail with where the test falls in a 10 s window. These tests inject
 * a limiter that answers what each test says instead (`callWith` replaces the
 * binding), and one test checks the real binding from wrangler.toml is the
 * one consulted.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { RUN_CREATION_LIMIT_PERIOD_SECONDS } from "../../src/api/rate-limit";
import { DEMO_BODY, apiClient, bodyOf, callWith, expectProblem, postInit, runEnvelope, runsInWorkspace } from "../support/api";
import { DEMO, DEMO_INPUT } from "../support/demo";
import { capturingConsole } from "../support/logs";
import { eventsOfWorkspace } from "../support/runs";

/** A limiter that records every key it is asked about and answers `decide(key)`. */
function scriptedLimiter(decide: (key: string) => boolean | Promise<boolean>) {
  const keys: string[] = [];
  const limiter: RateLimit = {
    async limit({ key }) {
      keys.push(key);
      return { success: await decide(key) };
    },
  };
  return { limiter, keys };
}

const create = (limiter: RateLimit, token: string, body: unknown = DEMO_BODY, headers: Record<string, string> = {}) =>
  callWith({ RUN_CREATION_LIMITER: limiter }, "/api/v1/runs", postInit(token, body, headers));

describe("POST /api/v1/runs over the workspace's run-creation limit", () => {
  it("answers 429 problem+json with Retry-After in seconds, and writes no run and no event", async () => {
    const client = await apiClient("limited");
    const { limiter, keys } = scriptedLimiter(() => false);

    const res = await create(limiter, client.token);

    const problem = await expectProblem(res, 429);
    expect(res.headers.get("retry-after")).toBe(String(RUN_CREATION_LIMIT_PERIOD_SECONDS));
    expect(problem.type).toBe("https://oplife.dev/problems/rate-limited");
    expect(problem.retryAfterSeconds).toBe(RUN_CREATION_LIMIT_PERIOD_SECONDS);
    expect(keys).toEqual([client.workspaceId]);
    expect(await runsInWorkspace(client.workspaceId)).toBe(0);
    expect(await eventsOfWorkspace(client.workspaceId)).toEqual([]);
  });

  it("is counted per workspace: the key is the workspace id, and one workspace's limit leaves another's runs alone", async () => {
    const busy = await apiClient("busy");
    const quiet = await apiClient("quiet");
    const { limiter, keys } = scriptedLimiter((key) => key !== busy.workspaceId);

    await expectProblem(await create(limiter, busy.token), 429);
    const res = await create(limiter, quiet.token);

    expect(res.status).toBe(202);
    expect(keys).toEqual([busy.workspaceId, quiet.workspaceId]);
    expect(await runsInWorkspace(busy.workspaceId)).toBe(0);
    expect(await runsInWorkspace(quiet.workspaceId)).toBe(1);
  });

  it("still answers an idempotent replay, and a refused request succeeds later with its own key: nothing is lost", async () => {
    const client = await apiClient("replay");
    let open = true;
    const { limiter } = scriptedLimiter(() => open);

    const first = await create(limiter, client.token, DEMO_BODY, { "idempotency-key": "order-1" });
    expect(first.status).toBe(202);
    const { run } = await bodyOf(first, runEnvelope);

    open = false;
    const replay = await create(limiter, client.token, DEMO_BODY, { "idempotency-key": "order-1" });
    expect(replay.status).toBe(200);
    expect((await bodyOf(replay, runEnvelope)).run.id).toBe(run.id);
    // The key's earlier run decides, as without a limit: another request under it is a conflict, not a 429.
    const reused = await create(limiter, client.token, { type: DEMO, input: { ...DEMO_INPUT, steps: 4 } }, { "idempotency-key": "order-1" });
    await expectProblem(reused, 409);
    const refused = await create(limiter, client.token, DEMO_BODY, { "idempotency-key": "order-2" });
    await expectProblem(refused, 429);
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);

    open = true;
    const later = await create(limiter, client.token, DEMO_BODY, { "idempotency-key": "order-2" });
    expect(later.status).toBe(202);
    expect((await bodyOf(later, runEnvelope)).run.id).not.toBe(run.id);
    expect(await runsInWorkspace(client.workspaceId)).toBe(2);
  });

  it("spends nothing on a request refused before the write (bad token, invalid input)", async () => {
    const client = await apiClient("refused");
    const { limiter, keys } = scriptedLimiter(() => true);

    await expectProblem(await create(limiter, "olt_not-a-token"), 401);
    await expectProblem(await create(limiter, client.token, { type: DEMO, input: { steps: 0, stepMs: 0 } }), 422);

    expect(keys).toEqual([]);
  });

  it("accepts the run when the limiter itself fails, and logs it", async () => {
    const client = await apiClient("limiter-down");
    const { limiter } = scriptedLimiter(() => Promise.reject(new Error("limiter unavailable")));

    const { value: res, json } = await capturingConsole("error", () => create(limiter, client.token));

    expect(res.status).toBe(202);
    expect(json).toContainEqual(expect.objectContaining({ event: "api.rate_limiter_failed", workspaceId: client.workspaceId }));
    expect(await runsInWorkspace(client.workspaceId)).toBe(1);
  });

  it("consults the binding wrangler.toml declares, keyed by the workspace", async () => {
    const client = await apiClient("real-binding");
    const answers: boolean[] = [];
    const { limiter, keys } = scriptedLimiter(async (key) => {
      const { success } = await env.RUN_CREATION_LIMITER.limit({ key });
      answers.push(success);
      return success;
    });

    const res = await create(limiter, client.token);

    expect(res.status).toBe(202);
    expect(keys).toEqual([client.workspaceId]);
    expect(answers).toEqual([true]);
  });
});
