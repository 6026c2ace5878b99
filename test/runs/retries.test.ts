/**
 * "Retried by" (contract section 7) as the API and the admin read it: one
 * query through the partial index operation_runs_retry_of_idx, scoped by
 * workspace, newest first and capped per run, whatever the number of ids.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_RETRIES_LISTED, RETRIES_OF_SQL, retriesOf } from "../../src/runs";
import { makeWorkspace, runService } from "../support/fixtures";
import { DEMO, DEMO_INPUT } from "../support/demo";

async function retryOfRun(workspaceId: string, original: string): Promise<string> {
  const c = await runService().create({ workspaceId, type: DEMO, input: DEMO_INPUT, initiator: "user:test", retryOf: original });
  if (!c.ok) throw new Error("not created");
  return c.run.id;
}

describe("retriesOf", () => {
  it("searches the partial index by retry_of, with no scan of the table", async () => {
    const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${RETRIES_OF_SQL}`).bind('["run_A"]', "ws").all<{ detail: string }>();
    const detail = res.results.map((r) => r.detail).join("\n");
    expect(detail).toMatch(/SEARCH operation_runs USING INDEX operation_runs_retry_of_idx \(retry_of=\?/);
    expect(detail).not.toMatch(/SCAN operation_runs/);
  });

  it("each run's retries, newest first, capped; another workspace's retries and runs without any are absent", async () => {
    const ws = await makeWorkspace("retries");
    const other = await makeWorkspace("retries-other");
    const svc = runService();
    const a = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:test" });
    const b = await svc.create({ workspaceId: ws, type: DEMO, input: DEMO_INPUT, initiator: "user:test" });
    if (!a.ok || !b.ok) throw new Error("not created");
    const ofA: string[] = [];
    for (let i = 0; i < MAX_RETRIES_LISTED + 2; i++) ofA.push(await retryOfRun(ws, a.run.id));
    // A row of another workspace naming a's id (only possible by a bug or by hand) is not a's retry here.
    await retryOfRun(other, a.run.id);

    const found = await retriesOf(env.DB, ws, [a.run.id, b.run.id, ...Array.from({ length: 150 }, (_, i) => `run_${i}`)]);
    expect([...found.keys()]).toEqual([a.run.id]);
    expect(found.get(a.run.id)).toEqual([...ofA].reverse().slice(0, MAX_RETRIES_LISTED));
    expect(await retriesOf(env.DB, ws, [])).toEqual(new Map());
  });
});
