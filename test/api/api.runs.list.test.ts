/**
 * GET /api/v1/runs: keyset pagination newest first, the status/type/display
 * filters (each display state of contract section 6, computed in SQL, must
 * agree with the run JSON's own displayState), query validation, and tenant
 * scoping. Runs are created through RunService (no queue message, so nothing
 * moves them) and put into each state by its transitions or a row update.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, DISPLAY_STATES, type DisplayStateKind } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import type { RunService } from "../../src/runs";
import { apiClient, bodyOf, call, expectProblem, runPage, type ApiClient, type RunJson } from "../support/api";
import { manualClock, runService, stopClock } from "../support/fixtures";
import { DEMO_INPUT } from "../support/demo";
import { newRun } from "../support/runs";

const P = policyFor("demo.work");
const LEGACY = "legacy.removed";

async function page(client: ApiClient, query: string) {
  const res = await call(`/api/v1/runs${query ? `?${query}` : ""}`, { token: client.token });
  expect(res.status, query).toBe(200);
  return bodyOf(res, runPage);
}

/** Every page of a listing, following nextCursor; fails on a loop instead of hanging. */
async function allPages(client: ApiClient, query: string): Promise<RunJson[][]> {
  const pages: RunJson[][] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `${query}&cursor=${encodeURIComponent(cursor)}` : query;
    const p = await page(client, q);
    pages.push(p.runs);
    cursor = p.nextCursor;
    if (pages.length > 50) throw new Error("pagination does not end");
  } while (cursor !== null);
  return pages;
}

async function setRow(runId: string, sets: string, ...values: unknown[]): Promise<void> {
  const res = await env.DB.prepare(`UPDATE operation_runs SET ${sets} WHERE id = ?`).bind(...values, runId).run();
  expect(res.meta.changes).toBe(1);
}

async function claimed(svc: RunService, workspaceId: string, type = "demo.work"): Promise<string> {
  const c = await svc.create({ workspaceId, type, input: DEMO_INPUT, initiator: "user:test" });
  if (!c.ok) throw new Error("create refused");
  const claim = await svc.claim(c.run.id, 1);
  if (!claim.ok) throw new Error(`claim refused: ${claim.refusal}`);
  return c.run.id;
}

function ok<T extends { ok: boolean }>(answer: T): T {
  expect(answer.ok).toBe(true);
  return answer;
}

/**
 * One workspace holding runs in every display state; returns the ids expected
 * for each. The caller stops the clock after seeding (stopClock), so the
 * fresh running and queued runs stay what they are while the test reads.
 */
async function seedEveryDisplayState(workspaceId: string): Promise<Record<DisplayStateKind, string[]>> {
  const svc = runService();
  const now = Date.now();
  const staleFor = P.heartbeatTimeoutMs + DEFAULT_SETTINGS.heartbeatFlushIntervalMs + 60_000;
  const queuedRun = async (type = "demo.work") => {
    const c = await svc.create({ workspaceId, type, input: type === "demo.work" ? DEMO_INPUT : {}, initiator: "user:test" });
    if (!c.ok) throw new Error("create refused");
    return c.run.id;
  };

  // Independent runs, so their setups run concurrently; each chain is ordered.
  const cancel = { actor: "user:canceller@test" } as const;
  const [queued, retrying, legacyQueued, overdue, running, stale, legacyRunning, succeeded, partial, threw, handlerFailed, reconciled, deadLettered, cancelling, silentCancelling, cancelledQueued, cancelledRunning] =
    await Promise.all([
      queuedRun(),
      // Attempt 1 failed retryably: back in the queue, waiting for attempt 2.
      claimed(svc, workspaceId).then(async (id) => {
        ok(await svc.failAttempt(id, 1, { reason: "handler.error", retryable: true, error: new Error("flaky") }));
        return id;
      }),
      queuedRun(LEGACY),
      queuedRun().then(async (id) => (await setRow(id, "deadline_at = ?", now - 60_000), id)),
      claimed(svc, workspaceId),
      claimed(svc, workspaceId).then(async (id) => (await setRow(id, "last_heartbeat_at = ?", now - staleFor), id)),
      // A running run of a type no deploy registers any more: nothing vouches for it.
      claimed(svc, workspaceId, LEGACY),
      claimed(svc, workspaceId).then(async (id) => (ok(await svc.complete(id, 1, { outcome: "succeeded" })), id)),
      claimed(svc, workspaceId).then(async (id) => (ok(await svc.complete(id, 1, { outcome: "partially_succeeded", message: "1 of 3 failed" })), id)),
      claimed(svc, workspaceId).then(async (id) => {
        ok(await svc.failAttempt(id, 1, { reason: "handler.error", retryable: false, error: new Error("boom") }));
        return id;
      }),
      claimed(svc, workspaceId).then(async (id) => (ok(await svc.complete(id, 1, { outcome: "failed", message: "step 2 failed" })), id)),
      queuedRun().then(async (id) => {
        const evidence = { test: true };
        ok(await svc.reconcile(id, { detector: "sweep", reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 }, evidence }));
        return id;
      }),
      claimed(svc, workspaceId).then(async (id) => (ok(await svc.deadLetter(id, { test: true })), id)),
      // Cancel requested while running: Cancelling, whether its heartbeat is fresh or not.
      claimed(svc, workspaceId).then(async (id) => (ok(await svc.cancel(id, cancel)), id)),
      claimed(svc, workspaceId).then(async (id) => {
        ok(await svc.cancel(id, cancel));
        await setRow(id, "last_heartbeat_at = ?", now - staleFor);
        return id;
      }),
      queuedRun().then(async (id) => (ok(await svc.cancel(id, cancel)), id)),
      claimed(svc, workspaceId).then(async (id) => {
        ok(await svc.cancel(id, cancel));
        ok(await svc.cancelStopped(id, 1, { how: "stopped", actor: "system:consumer" }));
        return id;
      }),
    ]);

  return {
    queued: [queued, legacyQueued],
    retrying: [retrying],
    queued_overdue: [overdue],
    running: [running],
    running_stale: [stale, legacyRunning],
    succeeded: [succeeded],
    partially_succeeded: [partial],
    failed: [threw, handlerFailed],
    failed_reconciled: [reconciled, deadLettered],
    cancelling: [cancelling, silentCancelling],
    cancelled: [cancelledQueued, cancelledRunning],
  };
}

const sorted = (ids: string[]) => [...ids].sort();

describe("keyset pagination, newest first", () => {
  async function sevenRuns() {
    const client = await apiClient("pages");
    // Distinct, increasing creation times (a second apart), all recent enough to be live.
    const clock = manualClock(Date.now() - 30_000);
    const svc = runService(clock.now);
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      ids.push((await newRun(svc, client.workspaceId)).id);
      clock.advance(1_000);
    }
    return { client, newestFirst: [...ids].reverse() };
  }

  it("limit=3 walks 3 + 3 + 1 runs without overlap or gap; the last page has no cursor", async () => {
    const { client, newestFirst } = await sevenRuns();
    const first = await page(client, "limit=3");
    expect(first.runs.map((r) => r.id)).toEqual(newestFirst.slice(0, 3));
    expect(first.nextCursor).not.toBeNull();

    const pages = await allPages(client, "limit=3");
    expect(pages.map((p) => p.length)).toEqual([3, 3, 1]);
    expect(pages.flat().map((r) => r.id)).toEqual(newestFirst);
    const times = pages.flat().map((r) => Date.parse(r.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(new Set(times).size).toBe(7);
  });

  it("a page that ends exactly at the last run has no cursor; one short of it has", async () => {
    const { client, newestFirst } = await sevenRuns();
    const all = await page(client, "limit=7");
    expect(all.runs.map((r) => r.id)).toEqual(newestFirst);
    expect(all.nextCursor).toBeNull();

    const six = await page(client, "limit=6");
    expect(six.runs).toHaveLength(6);
    expect(six.nextCursor).not.toBeNull();
    const rest = await page(client, `limit=6&cursor=${six.nextCursor}`);
    expect(rest.runs.map((r) => r.id)).toEqual([newestFirst[6]]);
    expect(rest.nextCursor).toBeNull();
  });

  it("without a limit, one page of up to 20", async () => {
    const { client, newestFirst } = await sevenRuns();
    const p = await page(client, "");
    expect(p.runs.map((r) => r.id)).toEqual(newestFirst);
    expect(p.nextCursor).toBeNull();
  });

  it("a cursor is opaque: it is not the run id itself", async () => {
    const { client, newestFirst } = await sevenRuns();
    const p = await page(client, "limit=2");
    expect(p.nextCursor).not.toBe(newestFirst[1]);
    expect(p.nextCursor).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it("a filtered listing keeps its filter across pages", async () => {
    const client = await apiClient("filtered-pages");
    const svc = runService();
    const queued: string[] = [];
    for (let i = 0; i < 5; i++) {
      queued.push((await newRun(svc, client.workspaceId)).id);
      await claimed(svc, client.workspaceId); // a running run between each queued one
    }
    const pages = await allPages(client, "status=queued&limit=2");
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat().map((r) => r.id)).toEqual([...queued].reverse());
    expect(pages.flat().every((r) => r.status === "queued")).toBe(true);
  });
});

describe("filters", () => {
  it("display=<state> returns exactly the runs in that state, for each of the eight, and none of another workspace", async () => {
    const client = await apiClient("display");
    const expected = await seedEveryDisplayState(client.workspaceId);
    const other = await apiClient("display-other");
    await seedEveryDisplayState(other.workspaceId);
    stopClock();

    for (const kind of DISPLAY_STATES) {
      const runs = (await allPages(client, `display=${kind}&limit=100`)).flat();
      expect(runs.map((r) => r.displayState), kind).toEqual(runs.map(() => kind));
      expect(sorted(runs.map((r) => r.id)), kind).toEqual(sorted(expected[kind]));
      expect(runs.every((r) => r.workspaceId === client.workspaceId), kind).toBe(true);
    }
  });

  it("the display states partition the workspace: each run is listed under its own state only", async () => {
    const client = await apiClient("display-partition");
    const expected = await seedEveryDisplayState(client.workspaceId);
    stopClock();
    const everything = (await page(client, "limit=100")).runs;
    const byState = new Map<string, string[]>();
    for (const r of everything) byState.set(r.displayState, [...(byState.get(r.displayState) ?? []), r.id]);
    for (const [kind, ids] of Object.entries(expected)) expect(sorted(byState.get(kind) ?? []), kind).toEqual(sorted(ids));
    expect(everything).toHaveLength(Object.values(expected).flat().length);
  });

  it("failed and failed_reconciled carry their reason family", async () => {
    const client = await apiClient("families");
    await seedEveryDisplayState(client.workspaceId);
    stopClock();
    const failed = (await page(client, "display=failed")).runs;
    const reconciled = (await page(client, "display=failed_reconciled")).runs;
    expect(failed.map((r) => [r.reasonFamily, r.reconciledBy])).toEqual(failed.map(() => ["execution", null]));
    expect(sorted(reconciled.map((r) => `${r.reasonCode}/${r.reconciledBy}`))).toEqual(
      sorted(["lifecycle.stale_queued/sweep", "queue.max_attempts_exceeded/dead_letter"]),
    );
    expect(reconciled.every((r) => r.reasonFamily === "lifecycle" && r.outcome === "failed")).toBe(true);
  });

  it("status=<status> returns exactly the runs with that status", async () => {
    const client = await apiClient("status");
    const expected = await seedEveryDisplayState(client.workspaceId);
    stopClock();
    const kindsOf = {
      queued: ["queued", "retrying", "queued_overdue"],
      running: ["running", "running_stale", "cancelling"],
      completed: ["succeeded", "partially_succeeded", "failed", "failed_reconciled", "cancelled"],
    } as const;
    for (const [status, kinds] of Object.entries(kindsOf)) {
      const runs = (await page(client, `status=${status}&limit=100`)).runs;
      expect(runs.every((r) => r.status === status), status).toBe(true);
      expect(sorted(runs.map((r) => r.id)), status).toEqual(sorted(kinds.flatMap((k) => expected[k])));
    }
  });

  it("type= returns only runs of that type", async () => {
    const client = await apiClient("type");
    const expected = await seedEveryDisplayState(client.workspaceId);
    stopClock();
    const legacy = [expected.queued[1], expected.running_stale[1]];
    const onlyLegacy = (await page(client, `type=${LEGACY}&limit=100`)).runs;
    expect(sorted(onlyLegacy.map((r) => r.id))).toEqual(sorted(legacy.filter((x) => x !== undefined)));
    expect(onlyLegacy.every((r) => r.type === LEGACY)).toBe(true);

    const demo = (await page(client, "type=demo.work&limit=100")).runs;
    expect(demo.every((r) => r.type === "demo.work")).toBe(true);
    expect(demo).toHaveLength(Object.values(expected).flat().length - legacy.length);
    expect((await page(client, "type=no.such.type")).runs).toEqual([]);
  });

  it("filters combine: status, type and display all hold", async () => {
    const client = await apiClient("combined");
    const expected = await seedEveryDisplayState(client.workspaceId);
    stopClock();
    const runs = (await page(client, "status=running&type=demo.work&display=running_stale")).runs;
    expect(runs.map((r) => r.id)).toEqual(expected.running_stale.slice(0, 1));
    expect((await page(client, "status=completed&display=queued")).runs).toEqual([]);
  });
});

describe("tenant scoping", () => {
  it("another workspace's runs never appear, with or without filters, nor through its cursor", async () => {
    const a = await apiClient("scope-a");
    const b = await apiClient("scope-b");
    const ownA = Object.values(await seedEveryDisplayState(a.workspaceId)).flat();
    const ownB = Object.values(await seedEveryDisplayState(b.workspaceId)).flat();

    for (const q of ["limit=100", "status=queued&limit=100", "display=failed_reconciled", "type=demo.work&limit=100", "limit=1"]) {
      const runs = (await allPages(a, q)).flat();
      expect(runs.length, q).toBeGreaterThan(0);
      for (const r of runs) {
        expect(r.workspaceId, q).toBe(a.workspaceId);
        expect(ownB, q).not.toContain(r.id);
      }
    }
    expect(sorted((await allPages(a, "limit=5")).flat().map((r) => r.id))).toEqual(sorted(ownA));

    // B's cursor is only a position: used by A it still lists A's runs only.
    const bCursor = (await page(b, "limit=1")).nextCursor;
    expect(bCursor).not.toBeNull();
    const viaForeignCursor = (await page(a, `limit=100&cursor=${bCursor}`)).runs;
    expect(viaForeignCursor.length, "A's runs before B's cursor").toBeGreaterThan(0);
    expect(viaForeignCursor.every((r) => r.workspaceId === a.workspaceId && ownA.includes(r.id))).toBe(true);
  });
});

describe("invalid query → 400 problem naming the parameter", () => {
  const b64url = (s: string) => btoa(s).replaceAll("+", "-").replaceAll("/", "_").replaceAll("=", "");
  it.each([
    ["limit=0", "limit"],
    ["limit=101", "limit"],
    ["limit=-3", "limit"],
    ["limit=abc", "limit"],
    ["limit=2.5", "limit"],
    ["limit=", "limit"],
    ["status=done", "status"],
    ["status=QUEUED", "status"],
    ["display=bogus", "display"],
    ["display=Queued", "display"],
    ["cursor=%21%21%21", "cursor"],
    [`cursor=${b64url("run_not-a-ulid")}`, "cursor"],
    [`cursor=${b64url("evt_01JH0000000000000000000000")}`, "cursor"],
    [`cursor=${"A".repeat(201)}`, "cursor"],
    [`type=${"t".repeat(201)}`, "type"],
    ["sort=asc", "(root)"],
  ])("%s", async (query, path) => {
    const client = await apiClient("bad-query");
    const problem = await expectProblem(await call(`/api/v1/runs?${query}`, { token: client.token }), 400);
    expect(problem.type).toBe("https://oplife.dev/problems/bad-request");
    expect(problem.errors?.map((e) => e.path)).toContain(path);
  });

  it("an unknown parameter is named in its error", async () => {
    const client = await apiClient("unknown-param");
    const problem = await expectProblem(await call("/api/v1/runs?sort=asc", { token: client.token }), 400);
    expect(problem.errors?.map((e) => e.message).join(" ")).toContain("sort");
  });
});
