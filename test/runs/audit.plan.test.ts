/**
 * The audit trail's readers hold to the shape migration 0012 gave the table
 * (`WITHOUT ROWID`, clustered on subject_type, subject_id, id): EXPLAIN QUERY
 * PLAN on real D1 for every statement that reads or deletes events, and rows
 * read proportional to the answer beside thousands of other events.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AUDIT_COLUMNS, AUDIT_EVENT_SQL, RUN_TIMELINE_SQL, listAuditEvents, listAuditEventsQuery, runTimeline, type AuditFilter } from "../../src/runs";
import { CHANGE_TOKEN_SQL } from "../../src/admin/queries";
import { EXPIRED_ORPHAN_EVENTS_SQL } from "../../src/sweep/retention";
import { eventExistsSql } from "../../src/tenancy/members";
import { makeWorkspace } from "../support/fixtures";

async function plan(sql: string, params: unknown[]): Promise<string> {
  const res = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return res.results.map((r) => r.detail).join("\n");
}

/** `count` events about `subjectType` subjects `${subjectPrefix}<n % subjects>`, ids `${idPrefix}<n>` in insertion order. */
async function bulkEvents(ws: string, o: { idPrefix: string; subjectType: string; subjectPrefix: string; subjects: number; count: number }): Promise<void> {
  await env.DB.prepare(
    `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
     INSERT INTO audit_events (${AUDIT_COLUMNS})
     SELECT ?2 || printf('%06d', i), ?3, 'system:bulk', 'bulk.event', ?4, ?5 || printf('%06d', i % ?6), '{}', i FROM n`,
  )
    .bind(o.count, o.idPrefix, ws, o.subjectType, o.subjectPrefix, o.subjects)
    .run();
}

const WORKSPACE_INDEX = /^SEARCH audit_events USING (COVERING )?INDEX audit_events_workspace_id_idx \(workspace_id=\?/;

describe("EXPLAIN QUERY PLAN, audit events", () => {
  it("a run's timeline is a range of the primary key, already in order", async () => {
    const detail = await plan(RUN_TIMELINE_SQL, ["run_x", "ws_x"]);
    expect(detail).toMatch(/^SEARCH audit_events USING PRIMARY KEY \(subject_type=\? AND subject_id=\?\)$/);
  });

  it.each<[string, Omit<AuditFilter, "limit">, RegExp]>([
    ["no filter", {}, WORKSPACE_INDEX],
    ["next page", { before: "evt_Z" }, /^SEARCH audit_events USING INDEX audit_events_workspace_id_idx \(workspace_id=\? AND id<\?\)$/],
    ["action", { action: "run.queued" }, WORKSPACE_INDEX],
    ["actor kind", { actorKind: "user" }, WORKSPACE_INDEX],
    ["one run", { runId: "run_x" }, /^SEARCH audit_events USING PRIMARY KEY \(subject_type=\? AND subject_id=\?\)$/],
    ["one run, next page", { runId: "run_x", before: "evt_Z" }, /^SEARCH audit_events USING PRIMARY KEY \(subject_type=\? AND subject_id=\? AND id<\?\)$/],
  ])("the audit log (%s) searches by index with no sort step", async (_name, filter, expected) => {
    const q = listAuditEventsQuery("ws_x", { ...filter, limit: 25 });
    const detail = await plan(q.sql, q.params);
    expect(detail).toMatch(expected);
    expect(detail).not.toMatch(/TEMP B-TREE/);
  });

  it("one event by workspace and id, and the live poll's newest id, are entries of the workspace index", async () => {
    expect(await plan(AUDIT_EVENT_SQL, ["evt_x", "ws_x"])).toMatch(/^SEARCH audit_events USING INDEX audit_events_workspace_id_idx \(workspace_id=\? AND id=\?\)$/);
    const live = await plan(CHANGE_TOKEN_SQL, ["ws_x"]);
    expect(live).toMatch(/^SEARCH audit_events USING COVERING INDEX audit_events_workspace_id_idx \(workspace_id=\?\)$/);
  });

  it("the CLI's check that its event was written finds it through the partial index of non-run events", async () => {
    const s = eventExistsSql("evt_x");
    expect(await plan(s.sql, s.params)).toMatch(/^SEARCH audit_events USING COVERING INDEX audit_events_other_id_idx \(id=\?\)$/);
  });

  it("retention of events about no run ranges over the partial index below the cutoff's id, both halves", async () => {
    const detail = await plan(EXPIRED_ORPHAN_EVENTS_SQL, ["evt_01", 90]);
    expect(detail).toMatch(/SEARCH audit_events USING COVERING INDEX audit_events_other_id_idx \(id<\?\)/);
    expect(detail).toMatch(/SEARCH audit_events USING INDEX audit_events_other_id_idx \(id=\?\)/);
    expect(detail).not.toMatch(/SCAN audit_events/);
  });
});

describe("rows read, audit events", () => {
  it("a run's timeline and a page of the log read about their answer beside 3,000 other events", async () => {
    const ws = await makeWorkspace("audit-plan");
    await bulkEvents(ws, { idPrefix: "evt_0A", subjectType: "run", subjectPrefix: "run_bulk", subjects: 1000, count: 3000 });
    await bulkEvents(ws, { idPrefix: "evt_0B", subjectType: "run", subjectPrefix: "run_one", subjects: 1, count: 5 });
    const m = await env.DB.prepare(RUN_TIMELINE_SQL).bind("run_one000000", ws).all();
    expect(m.results).toHaveLength(5);
    expect(m.meta.rows_read).toBeLessThanOrEqual(5 + 1);
    expect((await runTimeline(env.DB, ws, "run_one000000")).map((e) => e.id)).toEqual(["evt_0B000001", "evt_0B000002", "evt_0B000003", "evt_0B000004", "evt_0B000005"]);
    // Another workspace cannot read the run's events.
    expect(await runTimeline(env.DB, await makeWorkspace("audit-plan-other"), "run_one000000")).toEqual([]);

    const page = await listAuditEvents(env.DB, ws, { limit: 25 });
    expect(page.events.map((e) => e.id)[0]).toBe("evt_0B000005");
    expect(page.events).toHaveLength(25);
    // An index entry and the row by its key for each, and the one past the page.
    expect(page.rowsRead).toBeLessThanOrEqual(2 * 26);
    const next = await listAuditEvents(env.DB, ws, { limit: 25, before: page.nextCursor! });
    expect(next.events[0]!.id < page.events[24]!.id).toBe(true);
  });

  it("retention's delete of expired events about no run reads none of the run events below the cutoff", async () => {
    const ws = await makeWorkspace("audit-orphans");
    // 2,000 events of runs not yet purged below the cutoff, and 7 expired events about no run.
    await bulkEvents(ws, { idPrefix: "evt_00R", subjectType: "run", subjectPrefix: "run_live", subjects: 700, count: 2000 });
    await bulkEvents(ws, { idPrefix: "evt_00Q", subjectType: "queue_message", subjectPrefix: "msg_", subjects: 7, count: 7 });
    // Newer than the cutoff: kept.
    await bulkEvents(ws, { idPrefix: "evt_9Q", subjectType: "queue_message", subjectPrefix: "msg_new", subjects: 3, count: 3 });
    const res = await env.DB.prepare(EXPIRED_ORPHAN_EVENTS_SQL).bind("evt_01", 90).run();
    expect(res.meta.changes).toBe(7);
    console.log(`orphan retention: ${res.meta.rows_read} rows read, ${res.meta.rows_written} written for 7 events beside 2,000 run events`);
    // About 5 per event (its entry in the subquery's range, the entry and the row the delete finds,
    // the index entries it removes) and where the range ends: never the 2,000 run events.
    expect(res.meta.rows_read).toBeLessThanOrEqual(7 * 6 + 2);
    const left = await env.DB.prepare("SELECT subject_type, COUNT(*) AS n FROM audit_events WHERE workspace_id = ? GROUP BY subject_type ORDER BY subject_type")
      .bind(ws)
      .all();
    expect(left.results).toEqual([
      { subject_type: "queue_message", n: 3 },
      { subject_type: "run", n: 2000 },
    ]);
  });
});
