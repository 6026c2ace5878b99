/**
 * Reads that could be served by a D1 read replica go through a D1 session
 * that starts at the primary (src/db/read-session.ts): the API's run, events
 * and list reads, and the admin's run page and audit log. Auth lookups and
 * every write take the binding itself. Locally there is no replication, so
 * what is checked is the path each statement takes, not where it ran.
 */
import { describe, expect, it } from "vitest";
import { sessionRecorder, type PreparedRead } from "../support/d1";
import { apiClient, callWith } from "../support/api";
import { clientFor, createRunning, devEnv } from "../support/admin";
import { makeWorkspace, runService } from "../support/fixtures";

/** The statements that read runs or their events: none may skip the session, and there must be some. */
function runReads(prepared: PreparedRead[]): PreparedRead[] {
  const reads = prepared.filter((p) => /\bFROM (operation_runs|audit_events)\b/i.test(p.sql));
  expect(reads.length).toBeGreaterThan(0);
  return reads;
}

describe("reads through a D1 session", () => {
  it("GET a run, its events and the list: every run and event read is in a first-primary session", async () => {
    const client = await apiClient("read-session-api");
    const runId = await createRunning(runService(), client.workspaceId);
    for (const path of [`/api/v1/runs/${runId}`, `/api/v1/runs/${runId}/events`, "/api/v1/runs?limit=5"]) {
      const recorder = sessionRecorder();
      const res = await callWith({ DB: recorder.db }, path, { token: client.token });
      expect(res.status, path).toBe(200);
      expect(runReads(recorder.prepared).map((p) => p.session), path).toEqual(runReads(recorder.prepared).map(() => "first-primary"));
    }
  });

  it("the admin's run page, its live refresh and the audit log read through a first-primary session", async () => {
    const svc = runService();
    const workspaceId = await makeWorkspace("read-session-admin");
    const client = await clientFor(workspaceId);
    const runId = await createRunning(svc, workspaceId);
    for (const path of [`/admin/operations/${runId}`, `/admin/operations/${runId}/live`, "/admin/audit-log"]) {
      const recorder = sessionRecorder();
      client.bindings = devEnv({ DB: recorder.db });
      await client.html(path);
      client.bindings = devEnv();
      expect(runReads(recorder.prepared).map((p) => p.session), path).toEqual(runReads(recorder.prepared).map(() => "first-primary"));
    }
  });
});
