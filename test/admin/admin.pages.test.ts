/**
 * What operators see (contract section 6), page by page: the operations
 * table's badges and tiles, its URL filters, polling that stops by itself,
 * "Load more" by keyset, empty states; the run page's explanation of its
 * reason code, timeline and collapsed diagnostics; the audit log's order,
 * filters and slide-over; the lifecycle page's timing rules with numbers.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS, DISPLAY_STATES, explainReason, type DisplayStateKind, type ReasonCode } from "../../src/lifecycle";
import type { RunService } from "../../src/runs";
import { makeWorkspace, runService, stopClock } from "../support/fixtures";
import { DEMO_POLICY as P } from "../support/demo";
import { policyFor } from "../../src/operations";
import {
  classes,
  clientFor,
  createDeadLettered,
  createExecutionFailure,
  createQueued,
  createRunning,
  eventsNewestFirst,
  insertRawEvent,
  insertTerminalRuns,
  one,
  PAGE_SIZE,
  parseHtml,
  seedEveryDisplayState,
  setRow,
  squash,
  pollTarget,
} from "../support/admin";

const DAY = 86_400_000;
const LEGACY = "legacy.removed";

async function rows(html: string) {
  const trs = await parseHtml(html, "tr[data-run-id]");
  const badges = await parseHtml(html, "tr[data-run-id] .badge");
  expect(badges).toHaveLength(trs.length);
  return trs.map((tr, i) => ({
    id: tr.attrs["data-run-id"]!,
    display: tr.attrs["data-display"],
    rowClasses: classes(tr),
    badgeDisplay: badges[i]!.attrs["data-display"],
    badgeClasses: classes(badges[i]!),
    label: squash(badges[i]!.text),
  }));
}

const ids = async (html: string) => (await rows(html)).map((r) => r.id);

async function selected(html: string, select: string): Promise<string[]> {
  const options = await parseHtml(html, `select[name="${select}"] option`);
  return options.filter((o) => "selected" in o.attrs).map((o) => o.attrs.value ?? "");
}

async function tiles(html: string): Promise<Record<string, number>> {
  const values = await parseHtml(html, "#tiles [data-tile]");
  return Object.fromEntries(values.map((v) => [v.attrs["data-tile"]!, Number(squash(v.text))]));
}

/**
 * A succeeded run created at `at`, its id of that time. Inserted as a row: the
 * service's monotonic id factory never mints an id older than one it already has.
 */
async function oldSucceeded(workspaceId: string, at: number): Promise<string> {
  const [id] = await insertTerminalRuns(workspaceId, { count: 1, createdAt: at });
  return id!;
}

describe("operations page: display states", () => {
  it("one row per display state, each with its own badge class; stale rows never carry the live look", async () => {
    const ws = await makeWorkspace("states");
    const seeded = await seedEveryDisplayState(ws);
    stopClock();
    const html = await (await clientFor(ws, "viewer")).html("/admin/operations");
    const shown = await rows(html);
    expect(shown.map((r) => r.id).sort()).toEqual(Object.values(seeded).sort());

    const byId = new Map(shown.map((r) => [r.id, r]));
    for (const kind of DISPLAY_STATES) {
      const row = byId.get(seeded[kind])!;
      expect({ kind, display: row.display, badge: row.badgeDisplay }).toEqual({ kind, display: kind, badge: kind });
      expect(row.badgeClasses, kind).toContain(`badge--${kind}`);
      // Exactly one state class per badge.
      expect(row.badgeClasses.filter((c) => c.startsWith("badge--")), kind).toEqual([`badge--${kind}`]);
    }
    const stateClasses = new Set(shown.flatMap((r) => r.badgeClasses.filter((c) => c.startsWith("badge--"))));
    expect(stateClasses.size).toBe(DISPLAY_STATES.length);

    // Cancelling is live work (being stopped), so its row keeps the live look's refresh.
    const live: DisplayStateKind[] = ["queued", "retrying", "running", "cancelling"];
    for (const kind of DISPLAY_STATES) {
      const row = byId.get(seeded[kind])!;
      expect(row.rowClasses.includes("row--live"), kind).toBe(live.includes(kind));
    }
    for (const kind of ["queued_overdue", "running_stale", "retrying"] as const) {
      const row = byId.get(seeded[kind])!;
      expect(row.badgeClasses, kind).not.toContain("badge--running");
      expect(row.badgeClasses, kind).not.toContain("badge--queued");
    }
    // Waiting for its next attempt is never fresh "Queued".
    expect(byId.get(seeded.retrying)!.label).toMatch(/^\S+ Retrying$/);

    expect(byId.get(seeded.queued_overdue)!.label).toContain("Queued · overdue");
    expect(byId.get(seeded.running_stale)!.label).toMatch(/Running · no heartbeat for (10|11) min/);
    expect(byId.get(seeded.running)!.label).toMatch(/Running$/);
    expect(byId.get(seeded.failed_reconciled)!.label).toContain("Failed · reconciled by sweep");
    expect(byId.get(seeded.failed)!.label).toMatch(/Failed$/);
    expect(byId.get(seeded.partially_succeeded)!.label).toContain("Partially succeeded");
  });

  it("tiles count active, retrying, stale, reconciled and all failures created in the last 24 h, for this workspace only", async () => {
    const svc = runService();
    const [ws, other] = await Promise.all([makeWorkspace("tiles"), makeWorkspace("tiles-other")]);
    await seedEveryDisplayState(ws, svc);
    // Failed runs created more than 24 h ago are not "of the last 24 h".
    const [oldFailure, oldReconciled] = await insertTerminalRuns(ws, { count: 2, createdAt: Date.now() - 25 * 3_600_000, failedEvery: 1 });
    await setRow(oldReconciled!, "reason_code = 'lifecycle.stale_running', reconciled_by = 'sweep'");
    expect(oldFailure).toBeDefined();
    // Another workspace's runs of every kind count nowhere here.
    await seedEveryDisplayState(other, svc);
    stopClock();

    const client = await clientFor(ws);
    const html = await client.html("/admin/operations");
    // Active: queued, retrying, running and cancelling.
    expect(await tiles(html)).toEqual({ active: 4, retrying: 1, stale: 2, reconciled: 1, failures: 2 });
    const tileBoxes = await parseHtml(html, "#tiles .tile");
    expect(tileBoxes.map(classes).flat()).toEqual(expect.arrayContaining(["tile--warn", "tile--reconciled", "tile--bad", "tile--retrying"]));

    // Each tile links to the filter that lists exactly the runs it counts.
    const counted = await tiles(html);
    for (const tile of tileBoxes) {
      const name = (await parseHtml(html, `#${tile.attrs.id} [data-tile]`))[0]!.attrs["data-tile"]!;
      const listed = await ids(await client.html(tile.attrs.href!));
      expect({ name, listed: listed.length }).toEqual({ name, listed: counted[name] });
    }

    // An empty workspace: all zero, and no alarm colours.
    const empty = await makeWorkspace("tiles-empty");
    const emptyHtml = await (await clientFor(empty)).html("/admin/operations");
    expect(await tiles(emptyHtml)).toEqual({ active: 0, retrying: 0, stale: 0, reconciled: 0, failures: 0 });
    const emptyClasses = (await parseHtml(emptyHtml, "#tiles .tile")).map(classes).flat();
    expect(emptyClasses).not.toContain("tile--warn");
    expect(emptyClasses).not.toContain("tile--bad");
  });
});

describe("operations page: filters in the URL", () => {
  async function filterWorkspace() {
    const svc = runService();
    const ws = await makeWorkspace("filters");
    const seeded = await seedEveryDisplayState(ws, svc);
    const legacy = await createQueued(svc, ws, LEGACY);
    const old = await oldSucceeded(ws, Date.now() - 2 * DAY);
    stopClock();
    return { ws, seeded, legacy, old, client: await clientFor(ws) };
  }

  it("display= shows only that state and is the selected option", async () => {
    const f = await filterWorkspace();
    for (const kind of ["failed", "running_stale", "queued"] as const) {
      const html = await f.client.html(`/admin/operations?display=${kind}`);
      const expected = kind === "queued" ? [f.seeded.queued, f.legacy].sort() : [f.seeded[kind]];
      expect((await ids(html)).sort(), kind).toEqual(expected);
      expect(await selected(html, "display"), kind).toEqual([kind]);
      expect((await rows(html)).every((r) => r.display === kind)).toBe(true);
    }
    // The succeeded filter includes the old run too (no range given).
    expect((await ids(await f.client.html("/admin/operations?display=succeeded"))).sort()).toEqual([f.seeded.succeeded, f.old].sort());
  });

  it("type= shows only that type and is the selected option", async () => {
    const f = await filterWorkspace();
    const html = await f.client.html("/admin/operations?type=demo.work");
    const shown = await ids(html);
    expect(shown).not.toContain(f.legacy);
    expect(shown).toHaveLength(Object.keys(f.seeded).length + 1);
    expect(await selected(html, "type")).toEqual(["demo.work"]);
    expect(await ids(await f.client.html(`/admin/operations?type=${LEGACY}`))).toEqual([f.legacy]);
  });

  it("range= keeps runs started within it and is the selected option; filters combine", async () => {
    const f = await filterWorkspace();
    const recent = await f.client.html("/admin/operations?range=1h");
    expect(await ids(recent)).not.toContain(f.old);
    expect(await ids(recent)).toHaveLength(Object.keys(f.seeded).length + 1);
    expect(await selected(recent, "range")).toEqual(["1h"]);
    expect(await ids(await f.client.html("/admin/operations?range=7d"))).toContain(f.old);

    const combined = await f.client.html("/admin/operations?display=succeeded&range=24h&type=demo.work");
    expect(await ids(combined)).toEqual([f.seeded.succeeded]);
    expect([await selected(combined, "display"), await selected(combined, "type"), await selected(combined, "range")]).toEqual([
      ["succeeded"],
      ["demo.work"],
      ["24h"],
    ]);
    // Filtered: a way back to everything.
    expect((await parseHtml(combined, 'form.filters a[href="/admin/operations"]')).map((a) => squash(a.text))).toEqual(["Clear"]);
    // Unfiltered: "Any" is selected everywhere and there is nothing to clear.
    const all = await f.client.html("/admin/operations");
    expect([await selected(all, "display"), await selected(all, "range")]).toEqual([[], []]);
    expect(await parseHtml(all, 'form.filters a[href="/admin/operations"]')).toHaveLength(0);
  });
});

describe("operations page: polling", () => {
  it("polls every 2 s while live runs are shown (the poll URL keeps the filters), and not at all when all shown runs are terminal", async () => {
    const svc = runService();
    const ws = await makeWorkspace("polling");
    await Promise.all([createQueued(svc, ws), createExecutionFailure(svc, ws)]);
    const client = await clientFor(ws);

    const live = await one(await client.html("/admin/operations?type=demo.work&range=24h"), "#poller");
    expect(live.attrs).toMatchObject({ "hx-trigger": "every 2s", "data-polling": "on" });
    expect(pollTarget(live.attrs["hx-get"])).toBe("/admin/operations/live?type=demo.work&range=24h");

    const terminal = await one(await client.html("/admin/operations?display=failed"), "#poller");
    expect(terminal.attrs["data-polling"]).toBe("off");
    expect(terminal.attrs["hx-trigger"]).toBeUndefined();
    expect(terminal.attrs["hx-get"]).toBeUndefined();
  });

  it("a stale run still polls (it will be reconciled); a workspace of only terminal runs does not", async () => {
    const svc = runService();
    const [staleWs, doneWs] = await Promise.all([makeWorkspace("poll-stale"), makeWorkspace("poll-done")]);
    const stale = await createRunning(svc, staleWs);
    await setRow(stale, "last_heartbeat_at = ?", Date.now() - 10 * 60_000);
    await insertTerminalRuns(doneWs, { count: 3, createdAt: Date.now() - 60_000 });
    expect((await one(await (await clientFor(staleWs)).html("/admin/operations"), "#poller")).attrs["hx-trigger"]).toBe("every 2s");
    expect((await one(await (await clientFor(doneWs)).html("/admin/operations"), "#poller")).attrs["data-polling"]).toBe("off");
  });

  it("/admin/operations/live answers out-of-band fragments (tiles, first page, poller), and the poller stops once the run completes", async () => {
    const svc = runService();
    const ws = await makeWorkspace("live");
    const run = await createRunning(svc, ws);
    stopClock();
    const client = await clientFor(ws);

    const first = await client.html("/admin/operations/live");
    expect(first).not.toContain("<html");
    // Tiles and rows are morphed in place (focus and scroll survive); the poller is replaced.
    for (const [id, swap] of [["tiles", "morph"], ["page-first", "morph"], ["poller", "true"]]) {
      expect((await one(first, `#${id}`)).attrs["hx-swap-oob"], id).toBe(swap);
    }
    expect((await one(first, "#page-first")).tag).toBe("tbody");
    expect(await rows(first)).toMatchObject([{ id: run, display: "running" }]);
    expect(await tiles(first)).toEqual({ active: 1, retrying: 0, stale: 0, reconciled: 0, failures: 0 });
    expect((await one(first, "#poller")).attrs["hx-trigger"]).toBe("every 2s");

    expect((await svc.complete(run, 1, { outcome: "succeeded" })).ok).toBe(true);
    const next = await client.html("/admin/operations/live");
    expect(await rows(next)).toMatchObject([{ id: run, display: "succeeded" }]);
    expect(await tiles(next)).toEqual({ active: 0, retrying: 0, stale: 0, reconciled: 0, failures: 0 });
    expect((await one(next, "#poller")).attrs).toMatchObject({ "data-polling": "off" });
    expect((await one(next, "#poller")).attrs["hx-trigger"]).toBeUndefined();
  });
});

describe("operations page: Load more", () => {
  it(`more than ${PAGE_SIZE} runs: the first page, then the rest by cursor, without overlap or gap`, async () => {
    const ws = await makeWorkspace("more");
    const oldestFirst = await insertTerminalRuns(ws, { count: PAGE_SIZE + 5, createdAt: Date.now() - 3_600_000 });
    const newestFirst = [...oldestFirst].reverse();
    const client = await clientFor(ws);

    const html = await client.html("/admin/operations");
    const firstPage = await ids(html);
    expect(firstPage).toEqual(newestFirst.slice(0, PAGE_SIZE));
    const more = await one(html, "#load-more a");
    const cursor = firstPage[PAGE_SIZE - 1]!;
    expect(more.attrs["hx-get"]).toBe(`/admin/operations/more?cursor=${cursor}`);
    expect(more.attrs["hx-target"]).toBe("#page-more");
    expect(more.attrs["hx-swap"]).toBe("beforeend");
    expect(more.attrs.href).toBe(`/admin/operations?cursor=${cursor}`);
    expect(squash(more.text)).toBe("Load more");

    const rest = await client.html(more.attrs["hx-get"]!);
    expect(rest).not.toContain("<html");
    const restIds = await ids(rest);
    expect(restIds).toEqual(newestFirst.slice(PAGE_SIZE));
    expect(restIds.filter((id) => firstPage.includes(id))).toEqual([]);
    // The last page replaces "Load more" with nothing.
    expect((await one(rest, "#load-more")).attrs["hx-swap-oob"]).toBe("true");
    expect(await parseHtml(rest, "#load-more a")).toHaveLength(0);
  });

  it(`exactly ${PAGE_SIZE} runs: no Load more`, async () => {
    const ws = await makeWorkspace("more-exact");
    await insertTerminalRuns(ws, { count: PAGE_SIZE, createdAt: Date.now() - 3_600_000 });
    const html = await (await clientFor(ws)).html("/admin/operations");
    expect(await ids(html)).toHaveLength(PAGE_SIZE);
    expect(await parseHtml(html, "#load-more a")).toHaveLength(0);
  });

  it("Load more keeps the filters: the next rows are of the filtered state only", async () => {
    const ws = await makeWorkspace("more-filtered");
    const failed = await insertTerminalRuns(ws, { count: PAGE_SIZE + 3, createdAt: Date.now() - 7_200_000, failedEvery: 1 });
    await insertTerminalRuns(ws, { count: 10, createdAt: Date.now() - 3_600_000 });
    const client = await clientFor(ws);
    const html = await client.html("/admin/operations?display=failed");
    const more = await one(html, "#load-more a");
    expect(more.attrs["hx-get"]).toBe(`/admin/operations/more?display=failed&cursor=${failed[3]}`);
    const rest = await client.html(more.attrs["hx-get"]!);
    expect(await ids(rest)).toEqual(failed.slice(0, 3).reverse());
  });
});

describe("operations page: empty states", () => {
  it("no runs at all: says how to start one", async () => {
    const ws = await makeWorkspace("empty");
    const html = await (await clientFor(ws)).html("/admin/operations");
    expect(squash((await one(html, ".empty__title")).text)).toBe("No runs yet in this workspace.");
    expect(squash((await one(html, ".empty__hint")).text)).toContain("POST /api/v1/runs");
    expect(await parseHtml(html, "table.runs")).toHaveLength(0);
    expect((await one(html, "#poller")).attrs["data-polling"]).toBe("off");
  });

  it("filters that match nothing: says to widen or clear them, not that there are no runs", async () => {
    const ws = await makeWorkspace("empty-filtered");
    await insertTerminalRuns(ws, { count: 2, createdAt: Date.now() - 60_000 });
    const html = await (await clientFor(ws)).html("/admin/operations?display=failed_reconciled");
    expect(squash((await one(html, ".empty__title")).text)).toBe("No runs match these filters.");
    expect(squash((await one(html, ".empty__hint")).text)).toBe("Widen the time range or clear the filters.");
    expect(html).not.toContain("No runs yet");
  });
});

describe("run page", () => {
  async function explanation(html: string) {
    const callout = await one(html, "[data-reason-family]");
    const dts = (await parseHtml(html, "dl.explain dt")).map((d) => squash(d.text));
    const dds = (await parseHtml(html, "dl.explain dd")).map((d) => squash(d.text));
    return {
      family: callout.attrs["data-reason-family"],
      classes: classes(callout),
      title: squash((await one(html, "[data-reason-family] .callout__title")).text),
      explain: Object.fromEntries(dts.map((t, i) => [t, dds[i]])),
      text: squash(callout.text),
    };
  }

  const expectedExplain = (code: ReasonCode) => {
    const r = explainReason(code);
    return { "What happened": r.whatHappened, "Side effects": r.sideEffects, "What to do": r.whatToDo };
  };

  it("an execution failure: what happened, side effects, what to do, and the failure message", async () => {
    const ws = await makeWorkspace("run-exec");
    const run = await createExecutionFailure(runService(), ws, "connection refused by db-7");
    const html = await (await clientFor(ws, "viewer")).html(`/admin/operations/${run}`);
    const e = await explanation(html);
    expect(e.family).toBe("execution");
    expect(e.classes).toContain("callout--bad");
    expect(e.title).toBe(`Failed: ${explainReason("handler.error").title}`);
    expect(e.explain).toEqual(expectedExplain("handler.error"));
    // A viewer reads the operator-safe sentence; the raw error text stays in diagnostics.
    expect(squash((await one(html, "[data-failure-message]")).text)).toBe("Attempt 1 of 3 failed with an error; the error is in diagnostics.");
    expect(html).not.toContain("connection refused by db-7");
    expect(html).not.toContain("Reconciled by the lifecycle machinery");
    expect(html).not.toContain("The outcome was decided by");
    expect((await one(html, "#run-summary")).attrs["data-display"]).toBe("failed");
  });

  it.each([
    ["dead_letter", "queue.max_attempts_exceeded", "the dead-letter bridge (the queue gave up on the message)"],
    ["sweep", "lifecycle.stale_running", "the reconciliation sweep (the backstop, after the tracker could not act)"],
    ["tracker_alarm", "lifecycle.stale_queued", "the run's tracker (its alarm found the attempt's deadline passed)"],
  ] as const)("reconciled by %s: reads as the machinery's decision, naming the detector", async (detector, code, detectorText) => {
    const svc = runService();
    const ws = await makeWorkspace("run-reconciled");
    let run: string;
    if (detector === "dead_letter") run = await createDeadLettered(svc, ws);
    else if (detector === "sweep") {
      run = await createRunning(svc, ws);
      const r = await svc.reconcile(run, { detector, reason: "lifecycle.stale_running", observed: { status: "running", attempt: 1 }, evidence: {} });
      expect(r.ok).toBe(true);
    } else {
      run = await createQueued(svc, ws);
      const r = await svc.reconcile(run, { detector, reason: "lifecycle.stale_queued", observed: { status: "queued", attempt: 0 }, evidence: {} });
      expect(r.ok).toBe(true);
    }
    const html = await (await clientFor(ws, "viewer")).html(`/admin/operations/${run}`);
    const e = await explanation(html);
    expect(e.family).toBe("lifecycle");
    expect(e.classes).toContain("callout--reconciled");
    expect(e.classes).not.toContain("callout--bad");
    expect(e.title).toBe(`Reconciled by the lifecycle machinery: ${explainReason(code).title}`);
    expect(e.text).toContain(`The handler never reported an outcome. The outcome was decided by ${detectorText}.`);
    expect(e.explain).toEqual(expectedExplain(code));
    expect((await one(html, "#run-summary")).attrs["data-display"]).toBe("failed_reconciled");
  });

  it("the timeline lists the run's audit events in the order they happened, with their actors", async () => {
    const ws = await makeWorkspace("run-timeline");
    const run = await createDeadLettered(runService(), ws);
    const html = await (await clientFor(ws, "viewer")).html(`/admin/operations/${run}`);
    const items = await parseHtml(html, "#timeline li");
    const stored = (await eventsNewestFirst(ws)).reverse();
    expect(stored.map((e) => e.action)).toEqual(["run.queued", "run.attempt_started", "run.attempt_failed", "run.reconciled"]);
    expect(items.map((li) => classes(li).find((c) => c.startsWith("timeline__item--")))).toEqual(
      stored.map((e) => `timeline__item--${e.action.replace(".", "-")}`),
    );
    expect((await parseHtml(html, "#timeline .timeline__what")).map((w) => w.text)).toEqual([
      "Queued",
      "Attempt started",
      "Attempt failed, will retry",
      "Reconciled",
    ]);
    expect(items.map((li) => li.text.includes("· attempt 1"))).toEqual([false, true, true, false]);
    const actors = await parseHtml(html, "#timeline .timeline__who code");
    expect(actors.map((a) => a.text)).toEqual(stored.map((e) => e.actor));
  });

  it("diagnostics are collapsed and hold the reason code, detector, thresholds, attempts and the original last error", async () => {
    const ws = await makeWorkspace("run-diagnostics");
    const run = await createDeadLettered(runService(), ws, "upstream 503 from inventory API");
    const html = await (await clientFor(ws, "operator")).html(`/admin/operations/${run}`);
    const details = await one(html, "details.diagnostics");
    expect("open" in details.attrs).toBe(false);
    expect(squash((await one(html, "details.diagnostics > summary")).text)).toBe("Diagnostics");

    const dts = (await parseHtml(html, "details.diagnostics > dl.facts > dt")).map((d) => squash(d.text));
    const dds = (await parseHtml(html, "details.diagnostics > dl.facts > dd")).map((d) => squash(d.text));
    const facts = Object.fromEntries(dts.map((t, i) => [t, dds[i]]));
    expect(facts).toMatchObject({ "Run id": run, "Reason code": "queue.max_attempts_exceeded", Detector: "dead_letter" });

    expect(squash((await one(html, "[data-last-error]")).text)).toBe("upstream 503 from inventory API");
    const lastError = (await parseHtml(html, "details.diagnostics p")).map((p) => squash(p.text)).find((t) => t.includes("upstream 503"));
    expect(lastError).toBe("Attempt 1 (handler.error): upstream 503 from inventory API");

    expect(await parseHtml(html, "details.diagnostics table.compact tbody tr")).toHaveLength(1);
    const cells = (await parseHtml(html, "details.diagnostics table.compact tbody td")).map((td) => squash(td.text));
    expect(cells).toEqual([
      "1",
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/),
      expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC$/),
      "handler.error · upstream 503 from inventory API",
    ]);

    // Thresholds in human units, keyed by their contract names.
    const thresholds = Object.fromEntries(
      (await parseHtml(html, "dl[data-thresholds] dd")).map((dd) => [dd.attrs["data-key"], squash(dd.text)]),
    );
    expect(thresholds).toEqual({
      timeoutMs: "1 min (60000 ms) · the type's",
      heartbeatIntervalMs: "1 s (1000 ms)",
      heartbeatTimeoutMs: "5 s (5000 ms)",
      staleQueuedAfterMs: "2 min (120000 ms)",
      staleRunningAfterMs: "90 s (90000 ms)",
      maxAttempts: String(P.maxAttempts),
      retryDelaySeconds: `${P.retryDelaySeconds} s`,
      heartbeatFlushIntervalMs: "30 s (30000 ms)",
      sweepGraceMs: "15 s (15000 ms)",
    });
    expect([P.timeoutMs, P.staleRunningAfterMs, DEFAULT_SETTINGS.sweepGraceMs]).toEqual([60_000, 90_000, 15_000]);
    const evidence = (await parseHtml(html, "dl[data-evidence] dd")).map((dd) => [dd.attrs["data-key"], squash(dd.text)]);
    expect(evidence).toEqual([["deliveryAttempts", "3"]]);
  });

  it("a stale running run warns that it looks stuck and keeps polling; a fresh one does not warn; a terminal one stops polling", async () => {
    const svc = runService();
    const ws = await makeWorkspace("run-stuck");
    const [fresh, stale, done] = await Promise.all([createRunning(svc, ws), createRunning(svc, ws), createExecutionFailure(svc, ws)]);
    await setRow(stale, "last_heartbeat_at = ?", Date.now() - 10 * 60_000);
    stopClock();
    const client = await clientFor(ws, "viewer");
    const freshHtml = await client.html(`/admin/operations/${fresh}`);
    const staleHtml = await client.html(`/admin/operations/${stale}`);
    const doneHtml = await client.html(`/admin/operations/${done}`);
    expect(squash((await one(staleHtml, ".callout--warn")).text)).toContain("This run looks stuck.");
    expect(await parseHtml(freshHtml, ".callout--warn")).toHaveLength(0);
    expect((await one(staleHtml, "#run-poller")).attrs).toMatchObject({ "hx-trigger": "every 2s", "hx-get": `/admin/operations/${stale}/live` });
    expect((await one(freshHtml, "#run-poller")).attrs["hx-trigger"]).toBe("every 2s");
    expect((await one(doneHtml, "#run-poller")).attrs).toEqual({ id: "run-poller", "data-polling": "off", "hx-swap-oob": "true" });
  });
});

describe("audit log", () => {
  async function auditWorkspace(svc: RunService = runService()) {
    const ws = await makeWorkspace("audit");
    const failed = await createExecutionFailure(svc, ws);
    const reconciled = await createDeadLettered(svc, ws);
    return { ws, failed, reconciled, client: await clientFor(ws, "operator"), stored: await eventsNewestFirst(ws) };
  }

  const eventIds = async (html: string) => (await parseHtml(html, "tr[data-event-id]")).map((r) => r.attrs["data-event-id"]!);

  it("lists the workspace's events newest first", async () => {
    const a = await auditWorkspace();
    // Execution failure: queued, attempt_started, failed; dead-lettered: queued, attempt_started, attempt_failed, reconciled.
    expect(a.stored).toHaveLength(7);
    expect(await eventIds(await a.client.html("/admin/audit-log"))).toEqual(a.stored.map((e) => e.id));
  });

  it("filters by action, actor kind and run, each reflected in the form", async () => {
    const a = await auditWorkspace();
    const byAction = await a.client.html("/admin/audit-log?action=run.queued");
    expect(await eventIds(byAction)).toEqual(a.stored.filter((e) => e.action === "run.queued").map((e) => e.id));
    expect(await selected(byAction, "action")).toEqual(["run.queued"]);

    const bySystem = await a.client.html("/admin/audit-log?actor=system");
    expect(await eventIds(bySystem)).toEqual(a.stored.filter((e) => e.actor.startsWith("system:")).map((e) => e.id));
    expect(await eventIds(bySystem)).toHaveLength(5);
    expect(await selected(bySystem, "actor")).toEqual(["system"]);
    expect(await eventIds(await a.client.html("/admin/audit-log?actor=user"))).toEqual(
      a.stored.filter((e) => e.actor.startsWith("user:")).map((e) => e.id),
    );

    const byRun = await a.client.html(`/admin/audit-log?run=${a.failed}`);
    expect(await eventIds(byRun)).toEqual(a.stored.filter((e) => e.subjectId === a.failed).map((e) => e.id));
    expect((await one(byRun, 'input[name="run"]')).attrs.value).toBe(a.failed);

    const combined = await a.client.html(`/admin/audit-log?run=${a.reconciled}&actor=system&action=run.reconciled`);
    const expected = a.stored.filter((e) => e.subjectId === a.reconciled && e.action === "run.reconciled");
    expect(expected).toHaveLength(1);
    expect(await eventIds(combined)).toEqual(expected.map((e) => e.id));

    const none = await a.client.html("/admin/audit-log?action=run.late_result_discarded");
    expect(squash((await one(none, ".empty__title")).text)).toBe("No events match these filters.");
  });

  it("older events page by cursor without overlap", async () => {
    const ws = await makeWorkspace("audit-pages");
    const run = await createQueued(runService(), ws);
    const t0 = Date.now() - 3_600_000;
    for (let i = 0; i < PAGE_SIZE + 4; i++) await insertRawEvent({ workspaceId: ws, subjectId: run, metadata: { i }, createdAt: t0 + i * 1_000 });
    const stored = (await eventsNewestFirst(ws)).map((e) => e.id);
    const client = await clientFor(ws);
    const first = await client.html("/admin/audit-log");
    expect(await eventIds(first)).toEqual(stored.slice(0, PAGE_SIZE));
    const older = (await parseHtml(first, ".load-more a"))[0]!;
    expect(older.attrs.href).toBe(`/admin/audit-log?cursor=${stored[PAGE_SIZE - 1]}`);
    const second = await client.html(older.attrs.href!);
    expect(await eventIds(second)).toEqual(stored.slice(PAGE_SIZE));
    expect(await parseHtml(second, ".load-more a")).toHaveLength(0);
  });

  it("?event= deep-links the slide-over open; without it the host is empty", async () => {
    const a = await auditWorkspace();
    const target = a.stored.find((e) => e.action === "run.attempt_failed")!;
    const html = await a.client.html(`/admin/audit-log?event=${target.id}`);
    const panel = await one(html, "#slideover aside.slideover");
    expect(panel.attrs).toMatchObject({ role: "dialog", "aria-modal": "true", "data-event-id": target.id });
    expect(squash((await one(html, "#slideover-title")).text)).toBe("run.attempt_failed");
    // The list is still there behind it.
    expect(await eventIds(html)).toEqual(a.stored.map((e) => e.id));

    expect(await parseHtml(await a.client.html("/admin/audit-log"), "#slideover aside")).toHaveLength(0);
    // Each row opens it by htmx and pushes the deep link.
    const link = (await parseHtml(html, `a.event-link[data-event-id="${target.id}"]`))[0]!;
    expect(link.attrs).toMatchObject({
      "hx-get": `/admin/audit-log/events/${target.id}`,
      "hx-target": "#slideover",
      "hx-push-url": `/admin/audit-log?event=${target.id}`,
      href: `/admin/audit-log?event=${target.id}`,
    });
  });

  it("the event fragment shows actor, action, a link to its run and the metadata pretty-printed", async () => {
    const a = await auditWorkspace();
    const target = a.stored.find((e) => e.action === "run.attempt_failed")!;
    const html = await a.client.html(`/admin/audit-log/events/${target.id}`);
    expect(html).not.toContain("<html");
    const dts = (await parseHtml(html, "aside dl.facts dt")).map((d) => squash(d.text));
    const dds = (await parseHtml(html, "aside dl.facts dd")).map((d) => squash(d.text));
    expect(Object.fromEntries(dts.map((t, i) => [t, dds[i]]))).toMatchObject({
      Actor: "system:consumer",
      Action: "run.attempt_failed",
      Subject: a.reconciled,
      "Event id": target.id,
    });
    expect((await one(html, `aside a[href="/admin/operations/${a.reconciled}"]`)).text).toBe(a.reconciled);
    const metadata = (await one(html, "pre[data-metadata]")).text;
    expect(metadata).toBe(JSON.stringify(JSON.parse(target.metadata), null, 2));
    expect(metadata).toContain('\n  "error": "upstream 503 from inventory API"');
  });
});

describe("lifecycle page", () => {
  it("shows each timing rule T1..T9 for demo.work with both numbers, and that the contract holds", async () => {
    const ws = await makeWorkspace("lifecycle");
    const html = await (await clientFor(ws, "viewer")).html("/admin/lifecycle");
    expect((await one(html, "[data-contract]")).attrs["data-contract"]).toBe("ok");
    // demo.work's rows (http.export has its own, checked by check:lifecycle's tests).
    const ruleRows = await parseHtml(html, 'tr[data-rule][data-type="demo.work"]');
    expect([...new Set(ruleRows.map((r) => r.attrs["data-rule"]))]).toEqual(["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9"]);
    const S = DEFAULT_SETTINGS;
    // The numbers, from the policy, the settings and wrangler.toml (max_retries 3, retry_delay 5 s, batches of 10
    // with a 2 s timeout, so T5 adds the longest timeout on the queue, http.export's; cron every minute).
    const expected: Array<[string, number, number]> = [
      ["T1", P.timeoutMs + S.safetyMarginMs, S.consumerWallClockLimitMs],
      ["T2", P.heartbeatTimeoutMs, 3 * P.heartbeatIntervalMs],
      ["T3", 3, 1],
      ["T4", P.retryDelaySeconds, 43_200],
      ["T4", P.retryDelaySeconds, 5],
      ["T5", P.staleQueuedAfterMs, 2_000 + P.retryDelaySeconds * 1000 + S.queueMarginMs + Math.max(P.timeoutMs, policyFor("http.export").timeoutMs)],
      ["T6", P.staleRunningAfterMs, P.heartbeatTimeoutMs + S.heartbeatFlushIntervalMs + S.sweepGraceMs],
      ["T7", 60_000, Math.min(P.staleQueuedAfterMs, P.staleRunningAfterMs)],
      ["T8", 1, 1],
      ["T8", 1, 1],
      ["T8", 1, 1],
      ["T9", P.expectedRuntimeMs, P.timeoutMs],
    ];
    expect(ruleRows).toHaveLength(expected.length);
    const values = (await parseHtml(html, 'tr[data-rule][data-type="demo.work"] [data-value]')).map((v) => Number(v.attrs["data-value"]));
    expected.forEach(([rule, left, right], i) => {
      const row = ruleRows[i]!;
      const numbers = values.slice(2 * i, 2 * i + 2);
      expect({ rule: row.attrs["data-rule"], numbers }).toEqual({ rule, numbers: [left, right] });
      expect(squash(row.text)).toContain("demo.work");
      expect(squash(row.text)).toMatch(/✓ holds$/);
    });
    // Human units, each rule's sides on lines of their own (never run together), the raw number beside.
    const t1 = (await parseHtml(html, 'tr[data-rule="T1"][data-type="demo.work"] [data-value]')).map((d) => squash(d.text));
    expect(t1).toEqual(["timeoutMs + safety margin = 90 s (90000 ms)", "≤ consumer wall-clock limit (ms) = 15 min (900000 ms)"]);
    // The policy as declared, in human units.
    const policy = Object.fromEntries((await parseHtml(html, 'section.policy[aria-labelledby="policy-demo.work"] dd[data-field]')).map((d) => [d.attrs["data-field"], squash(d.text)]));
    expect(policy).toEqual({
      timeoutMs: "1 min (60000 ms)",
      expectedRuntimeMs: "20 s (20000 ms)",
      heartbeatIntervalMs: "1 s (1000 ms)",
      heartbeatTimeoutMs: "5 s (5000 ms)",
      staleQueuedAfterMs: "2 min (120000 ms)",
      staleRunningAfterMs: "90 s (90000 ms)",
      maxAttempts: "3",
      retryDelaySeconds: "5 s",
      queue: P.queue,
    });
    const settings = Object.fromEntries((await parseHtml(html, "dd[data-setting]")).map((d) => [d.attrs["data-setting"], squash(d.text)]));
    expect(settings.consumerWallClockLimitMs).toBe("15 min (900000 ms)");
    const labels = (await parseHtml(html, "section.policy dt, dl.facts dt")).map((d) => squash(d.text));
    expect(labels).toContain("Consumer wall-clock limit");
    expect(labels.every((l) => !/[a-z][A-Z]/.test(l)), labels.join(" | ")).toBe(true);
  });
});
