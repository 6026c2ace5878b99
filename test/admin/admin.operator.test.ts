/**
 * What an on-call operator needs from the admin at a glance (issue 14), as
 * the Worker renders it: which run is which (id, created, duration, search
 * by id), waiting work that never reads as fresh work (Retrying with its
 * attempt, last error and due time; the error only for roles that may read
 * diagnostics), run pages with the run's own thresholds and redacted input,
 * a timeline whose last dot is the outcome's, and a 403 page with navigation.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { listingQuery, operationsPage } from "../../src/admin/queries";
import { meteredDb } from "../../src/runs";
import { makeWorkspace, runService } from "../support/fixtures";
import { batchRecorder } from "../support/d1";
import { DEMO_POLICY as P } from "../support/demo";
import {
  classes,
  clientFor,
  createQueued,
  createRetrying,
  createRunning,
  insertTerminalRuns,
  one,
  PAGE_SIZE,
  parseHtml,
  seedEveryDisplayState,
  setRow,
  squash,
  pollTarget,
} from "../support/admin";

const LEGACY = "legacy.removed";

async function row(html: string, runId: string) {
  const tr = await one(html, `tr[data-run-id="${runId}"]`);
  const cells = (await parseHtml(html, `tr[data-run-id="${runId}"] > td, tr[data-run-id="${runId}"] > th`)).map((c) => squash(c.text));
  return { attrs: tr.attrs, cells, text: squash(tr.text) };
}

const ok = <T extends { ok: boolean }>(answer: T): T => {
  if (!answer.ok) throw new Error(`refused: ${JSON.stringify(answer)}`);
  return answer;
};

describe("operations list: which run is which", () => {
  it("each row: a short id linking to its run (the full id in its accessible name), a copy button, type, state, attempt, created, duration or age, heartbeat", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-rows");
    const [queued, running] = await Promise.all([createQueued(svc, ws), createRunning(svc, ws)]);
    const [done] = await insertTerminalRuns(ws, { count: 1, createdAt: Date.now() - 3_600_000 });
    const html = await (await clientFor(ws)).html("/admin/operations");

    for (const id of [queued, running, done!]) {
      const link = await one(html, `tr[data-run-id="${id}"] a.run-link`);
      expect(link.attrs).toMatchObject({ href: `/admin/operations/${id}`, "aria-label": `Run ${id}`, title: id });
      expect(squash(link.text)).toBe(`…${id.slice(-8)}`);
      expect((await one(html, `tr[data-run-id="${id}"] button.copy`)).attrs).toMatchObject({ "data-copy": id, "aria-label": `Copy run id ${id}` });
    }
    // No two links share an accessible name: there is no row of identical "View run" links.
    const names = (await parseHtml(html, "tr[data-run-id] a")).map((a) => a.attrs["aria-label"] ?? squash(a.text));
    expect(new Set(names).size).toBe(names.length);
    expect(html).not.toContain("View run");

    const q = await row(html, queued);
    expect(q.cells[1]).toBe("demo.work");
    expect(q.cells[3]).toBe(`0/${P.maxAttempts}`);
    expect(q.cells[5]).toMatch(/^\d+ s ago$/);
    expect(q.cells[6]).toMatch(/^waiting \d+ s$/);
    expect(q.cells[7]).toBe("not started yet");
    // Created: relative, with the absolute time on hover.
    expect((await one(html, `tr[data-run-id="${queued}"] td time`)).attrs.title).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/);

    expect((await row(html, running)).cells[6]).toMatch(/^running \d+ s$/);
    const d = await row(html, done!);
    expect(d.cells[5]).toBe("1 h ago");
    expect(d.cells[6]).toMatch(/^took \d+ s$/);
  });

  it("search by run id: the exact run, in any letter case and with or without run_; another workspace's run is not found", async () => {
    const svc = runService();
    const [ws, other] = await Promise.all([makeWorkspace("op-search"), makeWorkspace("op-search-other")]);
    const [mine, alsoMine, theirs] = await Promise.all([createQueued(svc, ws), createQueued(svc, ws), createQueued(svc, other)]);
    const client = await clientFor(ws);
    const shown = async (path: string) => (await parseHtml(await client.html(path), "tr[data-run-id]")).map((r) => r.attrs["data-run-id"]);

    expect(await shown(`/admin/operations?run=${mine}`)).toEqual([mine]);
    expect(await shown(`/admin/operations?run=${encodeURIComponent(`  ${mine.slice(4).toLowerCase()} `)}`)).toEqual([mine]);
    expect(await shown(`/admin/operations?run=${alsoMine}`)).toEqual([alsoMine]);
    const foreign = await client.html(`/admin/operations?run=${theirs}`);
    expect(await parseHtml(foreign, "tr[data-run-id]")).toHaveLength(0);
    expect(squash((await one(foreign, ".empty__title")).text)).toBe("No run with this id in this workspace.");
    // The search box keeps what was searched; the poll keeps it too.
    const html = await client.html(`/admin/operations?run=${mine}`);
    expect((await one(html, 'input[name="run"]')).attrs.value).toBe(mine);
    expect(pollTarget((await one(html, "#poller")).attrs["hx-get"])).toBe(`/admin/operations/live?run=${mine}`);

    // Not an id: a sentence, nothing looked up, the unfiltered list still there.
    const bad = await client.html("/admin/operations?run=ABC123");
    expect(squash((await one(bad, "#run-search-error")).text)).toContain("run_ followed by 26");
    expect((await one(bad, 'input[name="run"]')).attrs["aria-invalid"]).toBe("true");
    expect(await parseHtml(bad, "tr[data-run-id]")).toHaveLength(2);
  });

  it("a search by id is one primary-key lookup scoped by the workspace: it reads one row among thousands", async () => {
    const ws = await makeWorkspace("op-search-cost");
    const ids = await insertTerminalRuns(ws, { count: 2_000, createdAt: Date.now() - 3_600_000 });
    const target = ids[700]!;
    const recorder = batchRecorder(env.DB);
    const metered = meteredDb(recorder.db);
    const page = await operationsPage(metered.db, ws, { limit: PAGE_SIZE, runId: target }, Date.now());
    expect(page.runs.map((r) => r.id)).toEqual([target]);
    expect(metered.cost.roundTrips).toBe(1);
    const [, listing] = recorder.batches[0]!;
    console.log(`search by run id among 2,000 runs: ${listing} rows read`);
    expect(listing).toBeLessThanOrEqual(1);
    // Another workspace's search for it reads nothing and finds nothing.
    const other = await makeWorkspace("op-search-cost-other");
    expect((await operationsPage(env.DB, other, { limit: PAGE_SIZE, runId: target }, Date.now())).runs).toEqual([]);
  });

  it("group filters (what the tiles link to) list exactly their states, live groups through the live runs of the outcome index", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-groups");
    const seeded = await seedEveryDisplayState(ws, svc);
    await insertTerminalRuns(ws, { count: 300, createdAt: Date.now() - 3_600_000 });
    const client = await clientFor(ws);
    const shown = async (display: string) =>
      (await parseHtml(await client.html(`/admin/operations?display=${display}`), "tr[data-run-id]")).map((r) => r.attrs["data-run-id"]).sort();
    expect(await shown("active")).toEqual([seeded.queued, seeded.retrying, seeded.running, seeded.cancelling].sort());
    expect(await shown("stale")).toEqual([seeded.queued_overdue, seeded.running_stale].sort());
    expect(await shown("failures")).toEqual([seeded.failed, seeded.failed_reconciled].sort());
    expect(await shown("retrying")).toEqual([seeded.retrying]);
    expect(await shown("queued")).toEqual([seeded.queued]);

    for (const group of ["active", "stale"] as const) {
      const q = listingQuery(ws, { limit: PAGE_SIZE, display: group }, Date.now());
      const plan = (await env.DB.prepare(`EXPLAIN QUERY PLAN ${q.sql}`).bind(...q.params).all<{ detail: string }>()).results.map((r) => r.detail);
      // Each status's range through the live runs (outcome 'pending'), none through the whole workspace.
      expect(plan.filter((d) => /operation_runs_workspace_outcome_id_idx \(workspace_id=\? AND outcome=\?/.test(d)), plan.join("\n")).toHaveLength(2);
      expect(plan.join("\n")).not.toMatch(/operation_runs_workspace_id_idx|SCAN operation_runs/);
      const res = await env.DB.prepare(q.sql).bind(...q.params).all();
      // Live runs only, never the 300 terminal ones: each status's range walks the 6 live runs
      // (queued and running alike are outcome 'pending'), an index entry and a row each at most,
      // and where each range ends.
      console.log(`display=${group}: ${res.meta.rows_read} rows read among 306 runs`);
      expect(res.meta.rows_read, group).toBeLessThanOrEqual(2 * (2 * 6 + 1));
    }
  });
});

describe("Retrying: waiting work never looks like fresh work", () => {
  it("a retryable failure: Retrying, which attempt failed, when the next is due, and the error excerpt for an operator", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-retrying");
    const id = await createRetrying(svc, ws, "upstream 503 from inventory API");
    const html = await (await clientFor(ws, "operator")).html("/admin/operations");
    const r = await row(html, id);
    expect(r.attrs["data-display"]).toBe("retrying");
    expect(squash((await one(html, `tr[data-run-id="${id}"] .badge`)).text)).toMatch(/Retrying$/);
    expect(classes(await one(html, `tr[data-run-id="${id}"] .badge`))).toEqual(["badge", "badge--retrying"]);
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-retry-attempt]`)).text)).toBe(`Attempt 1 of ${P.maxAttempts} failed`);
    // Due retryDelaySeconds after the failure: 5 s at most, counted down by each refresh.
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-retry-due]`)).text)).toMatch(/^next attempt due (in [1-5] s|now)$/);
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-last-error-excerpt]`)).text)).toBe("upstream 503 from inventory API");
    expect(r.cells[3]).toBe(`1/${P.maxAttempts}`);
  });

  it("a viewer sees that it failed and when it is retried, never the error text", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-retrying-viewer");
    const id = await createRetrying(svc, ws, "db password=hunter2 rejected by replica-3");
    const client = await clientFor(ws, "viewer");
    for (const path of ["/admin/operations", `/admin/operations/${id}`, "/admin/operations/live"]) {
      const html = await client.html(path);
      expect(html, path).not.toContain("replica-3");
      expect(html, path).toContain("Attempt 1 of 3 failed");
      expect(squash((await one(html, "[data-last-error-hidden]")).text), path).toBe("Its error is in the diagnostics, which owners and operators can read.");
    }
  });

  it("a lost attempt waiting for its re-dispatch reads as Retrying (lost), not Queued", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-lost");
    const id = await createRunning(svc, ws);
    ok(await svc.heartbeatLost(id, 1, { lastHeartbeatAt: Date.now() - 6_000, detectedAt: Date.now() }));
    const html = await (await clientFor(ws)).html("/admin/operations");
    expect((await row(html, id)).attrs["data-display"]).toBe("retrying");
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-retry-attempt]`)).text)).toBe(`Attempt 1 of ${P.maxAttempts} was lost (no heartbeat)`);
    // Re-dispatched at once: due now.
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-retry-due]`)).text)).toBe("next attempt due now");
    expect(squash((await one(html, "#tiles [data-tile=retrying]")).text)).toBe("1");
  });

  it("the due time comes from the run's own recorded threshold, not today's policy", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-due");
    const id = await createRetrying(svc, ws);
    // As recorded on the run: its queued deadline = due + its own staleQueuedAfterMs (600 s, unlike the policy's 120 s).
    const due = Date.now() + 42_000;
    const run = ok(await svc.get(ws, id).then((r) => ({ ok: r !== null, run: r! }))).run;
    const diagnostics = { ...run.diagnostics, thresholds: { ...run.diagnostics.thresholds, staleQueuedAfterMs: 600_000 } };
    await setRow(id, "deadline_at = ?, diagnostics = ?", due + 600_000, JSON.stringify(diagnostics));
    const html = await (await clientFor(ws)).html("/admin/operations");
    expect(squash((await one(html, `tr[data-run-id="${id}"] [data-retry-due]`)).text)).toMatch(/^next attempt due in (42|43) s$/);
  });
});

describe("run page", () => {
  it("a run that ended on its own (per-input) timeout: its thresholds, and an explanation that blames that timeout", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-timeout");
    const c = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 5, stepMs: 2_000, timeoutMs: 3_000 }, initiator: "user:t" });
    if (!c.ok) throw new Error("create refused");
    ok(await svc.claim(c.run.id, 1));
    ok(await svc.failAttempt(c.run.id, 1, { reason: "attempt.timeout", retryable: false, error: new Error("The attempt exceeded its timeout of 3000 ms.") }));
    const html = await (await clientFor(ws, "operator")).html(`/admin/operations/${c.run.id}`);

    const explain = squash((await one(html, "[data-reason-family]")).text);
    expect(explain).toContain(`Attempt 1 of 3 ran longer than this run's own timeout of 3 s (set by its input; the type allows up to 1 min) and was aborted`);
    expect(explain).toContain("start a new run with a larger timeout in its input");
    expect(explain).not.toContain("raise the type's timeout");
    expect(html).not.toContain("Attempt 1 of 3 failed");
    const timeout = await one(html, 'dl[data-thresholds] dd[data-key="timeoutMs"]');
    expect(squash(timeout.text)).toBe("3 s (3000 ms) · this run's own, from its input (the type's is 1 min)");
  });

  it("a run on the type's timeout keeps the type's advice", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-timeout-type");
    const id = await createRunning(svc, ws);
    ok(await svc.failAttempt(id, 1, { reason: "attempt.timeout", retryable: false, error: new Error("The attempt exceeded its timeout of 300000 ms.") }));
    const explain = squash((await one(await (await clientFor(ws)).html(`/admin/operations/${id}`), "[data-reason-family]")).text);
    expect(explain).toContain("ran longer than the type's timeout of 1 min");
    expect(explain).toContain("raise the timeout (the run's own, or the type's within the contract)");
  });

  it("a failed run's timeline ends on the failure's colour, a succeeded one on success's", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-timeline");
    const [failed, succeeded] = await Promise.all([createRunning(svc, ws), createRunning(svc, ws)]);
    ok(await svc.complete(failed, 1, { outcome: "failed", message: "step 2 failed" }));
    ok(await svc.complete(succeeded, 1, { outcome: "succeeded" }));
    const client = await clientFor(ws);
    const last = async (id: string) => (await parseHtml(await client.html(`/admin/operations/${id}`), "#timeline li")).at(-1)!;
    const f = await last(failed);
    expect(classes(f)).toContain("timeline__item--outcome-failed");
    expect(squash(f.text)).toMatch(/^Completed: failed/);
    const s = await last(succeeded);
    expect(classes(s)).toContain("timeline__item--outcome-succeeded");
    expect(classes(s)).not.toContain("timeline__item--outcome-failed");
  });

  it("shows the input with secrets masked, and evidence times as dates and durations in units", async () => {
    const svc = runService();
    const ws = await makeWorkspace("op-input");
    const c = await svc.create({
      workspaceId: ws,
      type: LEGACY,
      input: { sku: "A-100", apiKey: "sk_live_abcdef123456", nested: { password: "hunter2", note: "Bearer abc.def.ghi" } },
      initiator: "user:t",
    });
    if (!c.ok) throw new Error("create refused");
    const detected = Date.UTC(2026, 10, 30, 9, 42, 42, 123);
    ok(
      await svc.reconcile(c.run.id, {
        detector: "tracker_alarm",
        reason: "lifecycle.stale_queued",
        observed: { status: "queued", attempt: 0 },
        evidence: { queuedSince: detected - 120_000, deadline: detected - 1, staleQueuedAfterMs: 120_000, detectedAt: detected },
      }),
    );
    const html = await (await clientFor(ws, "owner")).html(`/admin/operations/${c.run.id}`);
    const input = JSON.parse((await one(html, "pre[data-input]")).text);
    expect(input).toEqual({ sku: "A-100", apiKey: "[redacted]", nested: { password: "[redacted]", note: "[redacted]" } });
    expect(html).not.toContain("hunter2");
    expect(html).not.toContain("sk_live_abcdef123456");

    const evidence = Object.fromEntries((await parseHtml(html, "dl[data-evidence] dd")).map((dd) => [dd.attrs["data-key"], squash(dd.text)]));
    expect(evidence).toEqual({
      queuedSince: "2026-11-30 09:40:42.123 UTC",
      deadline: "2026-11-30 09:42:42.122 UTC",
      staleQueuedAfterMs: "2 min (120000 ms)",
      detectedAt: "2026-11-30 09:42:42.123 UTC",
    });
    expect(html).not.toContain(String(detected));
  });
});

describe("pages around the lists", () => {
  it("a 403 keeps the navigation (without the page the role cannot open) and offers the way back", async () => {
    const ws = await makeWorkspace("op-403");
    const client = await clientFor(ws, "viewer");
    const res = await client.get("/admin/audit-log");
    expect(res.status).toBe(403);
    const html = await res.text();
    const nav = (await parseHtml(html, 'nav[aria-label="Main"] a')).map((a) => squash(a.text));
    expect(nav).toEqual(["Operations", "Lifecycle"]);
    expect((await one(html, ".error-page a.button")).attrs.href).toBe("/admin/operations");
    expect(squash((await one(html, ".error-page h1")).text)).toBe("Not allowed");
    // An owner's navigation has every page, settings included.
    const owner = await clientFor(ws, "owner");
    expect((await parseHtml(await owner.html("/admin/operations"), 'nav[aria-label="Main"] a')).map((a) => squash(a.text))).toEqual([
      "Operations",
      "Audit log",
      "Lifecycle",
      "Settings",
    ]);
  });

  it("every page has a skip link to its main content, a polite live region, and htmx kept inside the CSP", async () => {
    const ws = await makeWorkspace("op-layout");
    const id = await createQueued(runService(), ws);
    const client = await clientFor(ws, "owner");
    for (const path of ["/admin/operations", `/admin/operations/${id}`, "/admin/audit-log", "/admin/lifecycle"]) {
      const html = await client.html(path);
      const skip = await one(html, "a.skip-link");
      expect(skip.attrs.href, path).toBe("#main");
      expect((await one(html, "main#main")).attrs.tabindex, path).toBe("-1");
      expect((await one(html, "#announcer")).attrs, path).toMatchObject({ role: "status", "aria-live": "polite" });
      expect(JSON.parse((await one(html, 'meta[name="htmx-config"]')).attrs.content!), path).toMatchObject({ includeIndicatorStyles: false });
      const scripts = (await parseHtml(html, "script")).map((s) => s.attrs.src);
      expect(scripts, path).toEqual(["/vendor/htmx.min.js", "/vendor/idiomorph-ext.min.js", "/admin.js"]);
      expect((await one(html, "body")).attrs["hx-ext"], path).toBe("morph");
    }
  });
});
