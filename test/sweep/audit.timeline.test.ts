/**
 * The audit trail: every transition's event names who acted (the initiator
 * for a create, the system actor of the path that decided otherwise) with
 * its evidence; one run's timeline reads in order; a workspace's events page
 * newest first by keyset without gaps or overlaps; filters narrow exactly;
 * nothing crosses workspaces; metadata is stored redacted.
 */
import { staleVerdictAt } from "../../src/tracker";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_MESSAGE_LENGTH } from "../../src/lifecycle";
import { getAuditEvent, insertAuditEvent, listAuditEvents, runTimeline, type Actor, type AuditFilter } from "../../src/runs";
import { makeWorkspace } from "../support/fixtures";
import { ageTracker, runAlarm, tracker } from "../support/execution";
import {
  bridgeDeadLetter,
  createQueued,
  DEMO_POLICY as P,
  diagnosticsOf,
  eventsOf,
  GRACE_MS,
  makeOverdue,
  service,
  storedRow,
  sweep,
  unableTracker,
  workspaceEventsNewestFirst,
  type StoredEvent,
} from "../support/sweep";

const byAction = (events: StoredEvent[], action: string) => {
  const found = events.filter((e) => e.action === action);
  expect(found, action).toHaveLength(1);
  return found[0]!;
};

describe("actors and evidence", () => {
  it("create → the initiator; claim/complete/fail/late result → system:consumer", async () => {
    const ws = await makeWorkspace("audit-actors");
    const svc = service();
    const created = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 2, stepMs: 0 }, idempotencyKey: "k-1", initiator: "api-token:tok_abc" });
    if (!created.ok) throw new Error("not created");
    const id = created.run.id;
    await svc.claim(id, 1);
    await svc.failAttempt(id, 1, { reason: "handler.error", retryable: true, error: new Error("socket hang up") });
    await svc.claim(id, 2);
    const progress = { total: 2, processed: 2, succeeded: 2, failed: 0 };
    await svc.complete(id, 2, { outcome: "succeeded", progress });
    await svc.complete(id, 1, { outcome: "failed", message: "zombie attempt 1 finished late" });

    const other = await createQueued(ws, { initiator: "user:u_42" });
    await svc.claim(other.id, P.maxAttempts);
    await svc.failAttempt(other.id, P.maxAttempts, { reason: "handler.error", retryable: false, error: new Error("schema mismatch") });

    const events = await eventsOf(id);
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ["run.queued", "api-token:tok_abc"],
      ["run.attempt_started", "system:consumer"],
      ["run.attempt_failed", "system:consumer"],
      ["run.attempt_started", "system:consumer"],
      ["run.completed", "system:consumer"],
      ["run.late_result_discarded", "system:consumer"],
    ]);
    expect(byAction(events, "run.queued").metadata).toEqual({ type: "demo.work", maxAttempts: P.maxAttempts, idempotencyKey: "k-1" });
    expect(events[1]!.metadata).toEqual({ from: "queued", to: "running", attempt: 1 });
    expect(byAction(events, "run.attempt_failed").metadata).toMatchObject({
      from: "running",
      to: "queued",
      attempt: 1,
      reason: "handler.error",
      error: "socket hang up",
    });
    expect(byAction(events, "run.completed").metadata).toEqual({
      from: "running",
      to: "completed",
      attempt: 2,
      outcome: "succeeded",
      message: null,
      progress,
    });
    expect(byAction(events, "run.late_result_discarded").metadata).toEqual({
      attempt: 1,
      refusal: "terminal",
      reported: { outcome: "failed", message: "zombie attempt 1 finished late", progress: null },
    });

    const otherEvents = await eventsOf(other.id);
    expect(otherEvents[0]).toMatchObject({ action: "run.queued", actor: "user:u_42" });
    expect(byAction(otherEvents, "run.failed")).toMatchObject({
      actor: "system:consumer",
      metadata: { from: "running", to: "completed", attempt: P.maxAttempts, reason: "handler.error", error: "schema mismatch", retryable: false },
    });
  });

  it("heartbeat lost and the tracker's reconciliation → system:tracker, with what the tracker saw", async () => {
    const ws = await makeWorkspace("audit-tracker");
    const run = await createQueued(ws, { initiator: "user:u_7" });
    const t = tracker(run.id);
    await t.track({ runId: run.id, workspaceId: run.workspaceId, type: run.type, maxAttempts: run.maxAttempts, attempt: 0, dueAt: run.createdAt });
    expect(await t.claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const silent = await ageTracker(run.id, P.heartbeatTimeoutMs + 2_000);
    await runAlarm(run.id);
    // Dispatch 2 is re-sent twice, then declared stale.
    for (let i = 0; i < 2; i++) {
      await ageTracker(run.id, P.staleQueuedAfterMs / 3 + 1);
      await runAlarm(run.id);
    }
    const requeued = await ageTracker(run.id, P.staleQueuedAfterMs / 3 + 1);
    await runAlarm(run.id);

    const events = await eventsOf(run.id);
    expect(events.map((e) => [e.action, e.actor])).toEqual([
      ["run.queued", "user:u_7"],
      ["run.attempt_started", "system:consumer"],
      ["run.attempt_lost", "system:tracker"],
      ["run.redispatched", "system:tracker"],
      ["run.redispatched", "system:tracker"],
      ["run.reconciled", "system:tracker"],
    ]);
    expect(byAction(events, "run.attempt_lost").metadata).toMatchObject({
      from: "running",
      to: "queued",
      attempt: 1,
      evidence: {
        lastHeartbeatAt: silent.lastHeartbeatAt,
        deadline: silent.lastHeartbeatAt! + P.heartbeatTimeoutMs,
        heartbeatTimeoutMs: P.heartbeatTimeoutMs,
      },
    });
    expect(byAction(events, "run.reconciled").metadata).toMatchObject({
      from: "queued",
      to: "completed",
      reason: "lifecycle.stale_queued",
      observed: { status: "queued", attempt: 1 },
      evidence: {
        dueAt: requeued.dispatch.dueAt,
        deadline: staleVerdictAt(requeued, P),
        staleQueuedAfterMs: P.staleQueuedAfterMs,
        dispatch: 2,
        sends: 3,
      },
      lastError: null,
    });
  });

  it("the sweep → system:sweep and the dead-letter bridge → system:dead-letter, with their evidence", async () => {
    const ws = await makeWorkspace("audit-machinery");
    const swept = await createQueued(ws);
    const aged = await makeOverdue(swept.id, 3_000);
    const report = await sweep({ tracker: unableTracker("rejects").tracker });
    expect(report.reconciled["lifecycle.stale_queued"]).toBeGreaterThanOrEqual(1);
    const sweptEvent = byAction(await eventsOf(swept.id), "run.reconciled");
    expect(sweptEvent).toMatchObject({
      actor: "system:sweep",
      metadata: {
        from: "queued",
        to: "completed",
        reason: "lifecycle.stale_queued",
        observed: { status: "queued", attempt: 0 },
        evidence: { deadlineAt: aged.deadline_at, lastHeartbeatAt: null, attempt: 0, maxAttempts: P.maxAttempts, tracker: "unavailable: injected: tracker unreachable" },
      },
    });
    const overdueBy = (sweptEvent.metadata.evidence as Record<string, unknown>).overdueByMs;
    expect(typeof overdueBy === "number" && overdueBy >= 3_000 + GRACE_MS).toBe(true);

    const lettered = await createQueued(ws);
    await bridgeDeadLetter(lettered, 4);
    expect(byAction(await eventsOf(lettered.id), "run.reconciled")).toMatchObject({
      actor: "system:dead-letter",
      metadata: { from: "queued", to: "completed", evidence: { queue: "operations-dlq", dlqDeliveries: 4 } },
    });
    expect(await storedRow(lettered.id)).toMatchObject({ reason_code: "queue.max_attempts_exceeded", reconciled_by: "dead_letter" });
  });
});

describe("reading the trail", () => {
  /** Four runs, each queued → attempt_started → completed: 12 events, two initiators of each kind. */
  async function seeded(name: string) {
    const ws = await makeWorkspace(name);
    const svc = service();
    const initiators: Actor[] = ["user:u_1", "api-token:tok_1", "user:u_2", "api-token:tok_2"];
    const runs: string[] = [];
    for (const initiator of initiators) {
      const run = await createQueued(ws, { initiator });
      await svc.claim(run.id, 1);
      await svc.complete(run.id, 1, { outcome: "succeeded" });
      runs.push(run.id);
    }
    return { ws, runs };
  }

  it("runTimeline returns one run's events in order, and nothing for another workspace", async () => {
    const { ws, runs } = await seeded("audit-timeline");
    const otherWs = await makeWorkspace("audit-timeline-other");
    const timeline = await runTimeline(env.DB, ws, runs[1]!);
    expect(timeline.map((e) => e.action)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
    expect(timeline.map((e) => e.actor)).toEqual(["api-token:tok_1", "system:consumer", "system:consumer"]);
    expect(timeline.map((e) => e.actorKind)).toEqual(["api-token", "system", "system"]);
    expect(timeline.every((e) => e.subjectId === runs[1] && e.workspaceId === ws && e.subjectType === "run")).toBe(true);
    const ids = timeline.map((e) => e.id);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(3);

    expect(await runTimeline(env.DB, otherWs, runs[1]!)).toEqual([]);
    expect(await getAuditEvent(env.DB, ws, ids[0]!)).toMatchObject({ id: ids[0], action: "run.queued", actor: "api-token:tok_1" });
    expect(await getAuditEvent(env.DB, otherWs, ids[0]!)).toBeNull();
  });

  it("listAuditEvents pages newest first by keyset: no overlap, no gap, no empty last page", async () => {
    const { ws } = await seeded("audit-pages");
    const neighbour = await seeded("audit-pages-neighbour");
    const all = (await workspaceEventsNewestFirst(ws)).map((e) => e.id);
    expect(all).toHaveLength(12);

    const pages: string[][] = [];
    let before: string | undefined;
    for (let i = 0; i < 10; i++) {
      const page = await listAuditEvents(env.DB, ws, { limit: 4, ...(before ? { before } : {}) });
      pages.push(page.events.map((e) => e.id));
      expect(page.events.every((e) => e.workspaceId === ws)).toBe(true);
      if (page.nextCursor === null) break;
      expect(page.nextCursor).toBe(page.events[page.events.length - 1]!.id);
      before = page.nextCursor;
    }
    // 12 events in pages of 4: exactly three pages, the last one saying there is no more.
    expect(pages.map((p) => p.length)).toEqual([4, 4, 4]);
    expect(pages.flat()).toEqual(all);
    const neighbourIds = new Set((await workspaceEventsNewestFirst(neighbour.ws)).map((e) => e.id));
    expect(neighbourIds.size).toBe(12);
    expect(pages.flat().filter((id) => neighbourIds.has(id))).toEqual([]);
  });

  it("filters by action, actor kind and run, each exactly, and pages within a filter", async () => {
    const { ws, runs } = await seeded("audit-filters");
    await seeded("audit-filters-neighbour");
    const all = await workspaceEventsNewestFirst(ws);
    const list = async (f: Omit<AuditFilter, "limit">, limit = 50) => (await listAuditEvents(env.DB, ws, { limit, ...f })).events;
    const ids = (events: { id: string }[]) => events.map((e) => e.id);

    expect(ids(await list({ action: "run.completed" }))).toEqual(ids(all.filter((e) => e.action === "run.completed")));
    expect(await list({ action: "run.completed" })).toHaveLength(4);

    const byKind = {
      user: all.filter((e) => e.actor.startsWith("user:")),
      "api-token": all.filter((e) => e.actor.startsWith("api-token:")),
      system: all.filter((e) => e.actor.startsWith("system:")),
    } as const;
    expect([byKind.user.length, byKind["api-token"].length, byKind.system.length]).toEqual([2, 2, 8]);
    for (const kind of ["user", "api-token", "system"] as const) {
      const got = await list({ actorKind: kind });
      expect(ids(got), kind).toEqual(ids(byKind[kind]));
      expect(got.every((e) => e.actorKind === kind)).toBe(true);
    }

    const oneRun = await list({ runId: runs[2]! });
    expect(oneRun.map((e) => e.action)).toEqual(["run.completed", "run.attempt_started", "run.queued"]);
    expect(oneRun.every((e) => e.subjectId === runs[2])).toBe(true);
    expect(await list({ runId: runs[2]!, actorKind: "api-token" })).toEqual([]);
    expect(ids(await list({ runId: runs[2]!, actorKind: "user" }))).toEqual([oneRun[2]!.id]);

    // A filter pages like the full list: 8 system events in pages of 3.
    const paged: string[] = [];
    let before: string | undefined;
    let pagesSeen = 0;
    do {
      const page = await listAuditEvents(env.DB, ws, { limit: 3, actorKind: "system", ...(before ? { before } : {}) });
      paged.push(...page.events.map((e) => e.id));
      before = page.nextCursor ?? undefined;
      pagesSeen++;
    } while (before && pagesSeen < 10);
    expect(pagesSeen).toBe(3);
    expect(paged).toEqual(ids(byKind.system));
  });
});

describe("redaction", () => {
  const SECRETS = "upstream said: Bearer abc.def.ghi, then password=hunter2 was refused.";
  const LONG = "lorem ipsum dolor sit amet ".repeat(75);

  it("a failure message with a bearer token, a password and 2000 characters is stored masked and trimmed", async () => {
    expect(LONG.length).toBeGreaterThanOrEqual(2000);
    const ws = await makeWorkspace("audit-redact");
    const svc = service();
    const run = await createQueued(ws);
    await svc.claim(run.id, P.maxAttempts);
    await svc.failAttempt(run.id, P.maxAttempts, { reason: "handler.error", retryable: false, error: new Error(`${SECRETS} ${LONG}`) });

    const event = (await runTimeline(env.DB, ws, run.id)).find((e) => e.action === "run.failed");
    const stored = (event?.metadata as Record<string, unknown> | undefined)?.error;
    if (typeof stored !== "string") throw new Error("run.failed has no error text");
    const row = await storedRow(run.id);
    const lastError = diagnosticsOf(row).lastError?.message ?? "";
    // The operator-facing sentence carries none of the raw text (contract section 1).
    expect(row.failure_message).toBe(`Attempt ${P.maxAttempts} of ${P.maxAttempts} failed with an error; the error is in diagnostics.`);
    for (const text of [stored, lastError]) {
      expect(text).not.toContain("abc.def.ghi");
      expect(text).not.toContain("hunter2");
      expect(text).toContain("password=[redacted]");
      expect(text).toContain("upstream said: [redacted]");
    }
    expect(stored.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
    expect(stored.endsWith("…")).toBe(true);
    expect(stored.startsWith("upstream said:")).toBe(true);
    expect(lastError).toBe(stored);
    // Nothing of the secret in the raw stored JSON either.
    const raw = await env.DB.prepare("SELECT metadata FROM audit_events WHERE subject_id = ?").bind(run.id).all<{ metadata: string }>();
    expect(raw.results.some((r) => r.metadata.includes("hunter2") || r.metadata.includes("abc.def.ghi"))).toBe(false);
  });

  it("a late result's raw report and secret-named metadata keys are masked when the event is written", async () => {
    const ws = await makeWorkspace("audit-redact-late");
    const svc = service();
    const run = await createQueued(ws);
    await svc.claim(run.id, 1);
    await svc.claim(run.id, 2); // takeover: attempt 1 is fenced
    await svc.complete(run.id, 1, { outcome: "failed", message: `late: api_key=sk_live_0123456789 and ${SECRETS}` });
    const late = (await eventsOf(run.id)).find((e) => e.action === "run.late_result_discarded");
    const reported = late?.metadata.reported as Record<string, unknown> | undefined;
    expect(reported?.outcome).toBe("failed");
    expect(reported?.message).toBe("late: api_key=[redacted] and upstream said: [redacted], then password=[redacted] was refused.");

    await insertAuditEvent(env.DB, {
      workspaceId: ws,
      actor: "system:consumer",
      action: "test.secrets",
      subjectType: "run",
      subjectId: run.id,
      metadata: { authorization: "Bearer x.y.z", nested: { clientSecret: "s3cr3t", note: "kept" }, count: 3 },
      createdAt: Date.now(),
    }).run();
    const masked = (await runTimeline(env.DB, ws, run.id)).find((e) => e.action === "test.secrets");
    expect(masked?.metadata).toEqual({ authorization: "[redacted]", nested: { clientSecret: "[redacted]", note: "kept" }, count: 3 });
  });
});
