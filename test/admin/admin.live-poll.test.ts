/**
 * The operations page's live poll reads what it refreshes (src/admin/live.ts):
 * when no transition happened since the last answer, a poll re-reads only
 * the live rows on screen, by id, in one round trip, and answers them as
 * in-place row morphs; a transition (a new audit event), a live run reaching
 * the instant its display state changes by time, or a capped tile brings the
 * full refresh back. Quiet polls back off to 10 s; a change brings 2 s back.
 * The poller's URL carries the D1 session's bookmark; one that is not a D1
 * bookmark is ignored.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { meteredDb } from "../../src/runs";
import { batchRecorder } from "../support/d1";
import { makeWorkspace, runService, stopClock } from "../support/fixtures";
import { clientFor, createQueued, createRunning, devEnv, one, parseHtml, type AdminClient } from "../support/admin";

/** The poller of an answer: its URL (decoded) and interval. */
async function pollerOf(html: string): Promise<{ url: string; every: string | undefined; polling: string | undefined }> {
  const p = await one(html, "#poller");
  return { url: p.attrs["hx-get"] ?? "", every: p.attrs["hx-trigger"], polling: p.attrs["data-polling"] };
}

/** Follow the poller once: the answer, what it cost, and whether it was a full refresh. */
async function poll(client: AdminClient, url: string) {
  const recorder = batchRecorder(env.DB);
  const metered = meteredDb(recorder.db);
  client.bindings = devEnv({ DB: metered.db });
  const html = await client.html(url);
  client.bindings = devEnv();
  const full = (await parseHtml(html, "#tiles")).length === 1;
  const rows = await parseHtml(html, "tr[data-run-id]");
  return { html, full, rows, cost: { ...metered.cost }, poller: await pollerOf(html) };
}

describe("live poll: reads only what it refreshes", () => {
  it("no transition since the last answer: only the live rows, by id, in one round trip; a transition brings the full refresh back", async () => {
    stopClock();
    const svc = runService();
    const ws = await makeWorkspace("poll-rows");
    const running = await createRunning(svc, ws);
    const queued = await createQueued(svc, ws);
    const client = await clientFor(ws);
    const page = await client.html("/admin/operations");
    const first = await pollerOf(page);
    expect(first.url).toContain("v=evt_");

    const quiet = await poll(client, first.url);
    expect(quiet.full).toBe(false);
    expect(quiet.rows.map((r) => [r.attrs["data-run-id"], r.attrs["hx-swap-oob"]]).sort()).toEqual(
      [
        [queued, "morph"],
        [running, "morph"],
      ].sort(),
    );
    // Auth (2 round trips) + one batch: the token and the 2 live rows (+ where their scans end).
    expect(quiet.cost.roundTrips).toBe(2 + 1);
    console.log(`quiet poll with 2 live runs: ${quiet.cost.rowsRead} rows read, ${quiet.cost.roundTrips} round trips (auth included)`);

    // A heartbeat changes a live row without an event: still rows only, showing it.
    await svc.heartbeat({ runId: running, type: "demo.work", attempt: 1, progress: { total: 4, processed: 2, succeeded: 2, failed: 0 }, force: true, at: Date.now() + 1 });
    const beat = await poll(client, quiet.poller.url);
    expect(beat.full).toBe(false);
    expect((await one(beat.html, `tr[data-run-id="${running}"] .progress`)).attrs["data-processed"]).toBe("2");

    // A transition writes an event: the next poll refreshes tiles and page.
    expect((await svc.complete(running, 1, { outcome: "succeeded" })).ok).toBe(true);
    const after = await poll(client, beat.poller.url);
    expect(after.full).toBe(true);
    expect((await one(after.html, `tr[data-run-id="${running}"]`)).attrs["data-display"]).toBe("succeeded");
    expect((await one(after.html, '[data-tile="active"]')).text.trim()).toBe("1");
    // The finished run is no longer re-read by the quiet polls that follow.
    const next = await poll(client, after.poller.url);
    expect(next.full).toBe(false);
    expect(next.rows.map((r) => r.attrs["data-run-id"])).toEqual([queued]);
  });

  it("quiet polls back off to 10 s; a change brings 2 s back", async () => {
    stopClock();
    const svc = runService();
    const ws = await makeWorkspace("poll-backoff");
    const running = await createRunning(svc, ws);
    const client = await clientFor(ws);
    let url = (await pollerOf(await client.html("/admin/operations"))).url;
    const intervals: Array<string | undefined> = [];
    for (let i = 0; i < 7; i++) {
      const p = await poll(client, url);
      intervals.push(p.poller.every);
      url = p.poller.url;
    }
    expect(intervals).toEqual(["every 2s", "every 2s", "every 4s", "every 8s", "every 10s", "every 10s", "every 10s"]);
    await svc.heartbeat({ runId: running, type: "demo.work", attempt: 1, force: true, at: Date.now() + 1 });
    expect((await poll(client, url)).poller.every).toBe("every 2s");
  });

  it("a live run reaching the instant it turns stale brings the full refresh back, tiles included", async () => {
    const t0 = Date.now();
    stopClock(t0);
    const svc = runService();
    const ws = await makeWorkspace("poll-flip");
    const running = await createRunning(svc, ws);
    const client = await clientFor(ws);
    const url = (await pollerOf(await client.html("/admin/operations"))).url;
    const until = Number(new URL(url, "http://x").searchParams.get("until"));
    expect(until).toBeGreaterThan(t0);
    stopClock(until);
    const p = await poll(client, url);
    expect(p.full).toBe(true);
    expect((await one(p.html, `tr[data-run-id="${running}"]`)).attrs["data-display"]).toBe("running_stale");
    expect((await one(p.html, '[data-tile="stale"]')).text.trim()).toBe("1");
  });

  it("another workspace's run ids in the URL are not read; a malformed state or bookmark means a full refresh, not an error", async () => {
    stopClock();
    const svc = runService();
    const [mine, theirs] = await Promise.all([makeWorkspace("poll-own"), makeWorkspace("poll-other")]);
    const own = await createQueued(svc, mine);
    const foreign = await createQueued(svc, theirs);
    const client = await clientFor(mine);
    const url = new URL((await pollerOf(await client.html("/admin/operations"))).url, "http://x");
    expect(url.searchParams.get("b")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/);
    url.searchParams.set("live", `${own},${foreign}`);
    const p = await poll(client, url.pathname + url.search);
    expect(p.full).toBe(false);
    expect(p.rows.map((r) => r.attrs["data-run-id"])).toEqual([own]);

    const broken = await poll(client, "/admin/operations/live?v=nonsense&live=x&idle=-3&b=not-a-bookmark");
    expect(p.poller.polling).toBe("on");
    expect(broken.full).toBe(true);
    expect(broken.rows.map((r) => r.attrs["data-run-id"])).toEqual([own]);
  });
});

