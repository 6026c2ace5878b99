/**
 * Retry as a new run from the admin (contract section 7) on the Workers
 * runtime with real D1 and real trackers: who may (owner, operator; a viewer
 * 403, another workspace 404, a cross-origin form 403), what it writes (a new
 * run with `retry_of`, handed to its tracker; `run.queued` naming the original
 * and `run.retried` on it, both by the user), the pages linking both ways, the
 * button only on terminal runs and only for those who may act, and the output
 * shown escaped and pretty-printed.
 */
import { describe, expect, it } from "vitest";
import type { MembershipRole } from "../../src/db/schema";
import { ORIGIN, clientFor, createExecutionFailure, createRunning, one, parseHtml, setRow, squash, type AdminClient } from "../support/admin";
import { trackerState } from "../support/execution";
import { makeWorkspace, runService } from "../support/fixtures";
import { countRuns, onlyEvent, snapshot, storedRow } from "../support/runs";

const KEY = "0b7f2a4e-5c1d-4e8f-9a3b-6d2c1e0f9a8b";

async function retryFrom(client: AdminClient, runId: string, form: Record<string, string> = { idempotencyKey: crypto.randomUUID() }, headers?: Record<string, string>) {
  return client.post(`/admin/operations/${runId}/retry`, form, headers);
}

/** The new run's id from a 303 to its page. */
function newRunOf(res: Response): string {
  expect(res.status).toBe(303);
  const location = res.headers.get("location") ?? "";
  expect(location).toMatch(/^\/admin\/operations\/run_[0-9A-HJKMNP-TV-Z]{26}$/);
  return location.slice("/admin/operations/".length);
}

describe("POST /admin/operations/{run}/retry", () => {
  for (const role of ["owner", "operator"] as MembershipRole[]) {
    it(`${role}: a new run with retry_of, held by its tracker, 303 to its page; the original untouched, both events by the user`, async () => {
      const ws = await makeWorkspace(`adm-retry-${role}`);
      const original = await createExecutionFailure(runService(), ws);
      const before = await snapshot(original);
      const client = await clientFor(ws, role);

      const newId = newRunOf(await retryFrom(client, original));
      const stored = await storedRow(newId);
      expect(stored).toMatchObject({ workspace_id: ws, type: "demo.work", status: "queued", attempt: 0, retry_of: original, input: before.row.input });
      expect(stored.initiator).toMatch(/^user:usr_/);
      expect(await trackerState(newId)).toMatchObject({ status: "queued", dispatch: { n: 1, sends: 1 } });

      expect((await storedRow(original))).toEqual(before.row);
      const retried = await onlyEvent(original, "run.retried");
      expect(retried.actor).toBe(stored.initiator);
      expect(retried.metadata).toMatchObject({ retryRunId: newId, actorId: expect.stringMatching(/^usr_/) });
      expect((await onlyEvent(newId, "run.queued")).metadata).toMatchObject({ retryOf: original, idempotencyKey: expect.stringMatching(/^admin-retry:/) });
    });
  }

  it("a viewer gets 403 and creates nothing; the page shows viewers no retry button", async () => {
    const ws = await makeWorkspace("adm-retry-viewer");
    const original = await createExecutionFailure(runService(), ws);
    const viewer = await clientFor(ws, "viewer");
    const res = await retryFrom(viewer, original);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("act on runs");
    expect(await countRuns(ws)).toBe(1);
    expect(await parseHtml(await viewer.html(`/admin/operations/${original}`), "form[data-retry-form]")).toEqual([]);
  });

  it("another workspace's run is a 404, and nothing is created in either workspace", async () => {
    const ws = await makeWorkspace("adm-retry-mine");
    const other = await makeWorkspace("adm-retry-theirs");
    const original = await createExecutionFailure(runService(), ws);
    const stranger = await clientFor(other, "owner");
    expect((await retryFrom(stranger, original)).status).toBe(404);
    expect((await retryFrom(stranger, "run_not-an-id")).status).toBe(404);
    expect(await countRuns(ws)).toBe(1);
    expect(await countRuns(other)).toBe(0);
  });

  it("a form posted from another origin (CSRF) is refused with 403 and creates nothing", async () => {
    const ws = await makeWorkspace("adm-retry-csrf");
    const original = await createExecutionFailure(runService(), ws);
    const owner = await clientFor(ws, "owner");
    const res = await retryFrom(owner, original, { idempotencyKey: KEY }, { origin: "https://evil.example" });
    expect(res.status).toBe(403);
    expect(await countRuns(ws)).toBe(1);
  });

  it("a run still live is refused with 409 (nothing created), and its page has no retry button", async () => {
    const ws = await makeWorkspace("adm-retry-live");
    const svc = runService();
    const running = await createRunning(svc, ws);
    const owner = await clientFor(ws, "owner");
    const res = await retryFrom(owner, running);
    expect(res.status).toBe(409);
    expect(await res.text()).toContain("This run is running.");
    expect(await countRuns(ws)).toBe(1);
    expect(await parseHtml(await owner.html(`/admin/operations/${running}`), "form[data-retry-form]")).toEqual([]);
    await setRow(running, "status = 'completed', outcome = 'failed', deadline_at = NULL, completed_at = ?", Date.now());
  });

  it("the same form sent twice (a double click) makes one run; both answers lead to it", async () => {
    const ws = await makeWorkspace("adm-retry-twice");
    const original = await createExecutionFailure(runService(), ws);
    const owner = await clientFor(ws, "owner");
    const first = newRunOf(await retryFrom(owner, original, { idempotencyKey: KEY }));
    const second = newRunOf(await retryFrom(owner, original, { idempotencyKey: KEY }));
    expect(second).toBe(first);
    expect(await countRuns(ws)).toBe(2);
    await onlyEvent(original, "run.retried");
  });
});

describe("the run pages link a run and its retries", () => {
  it("the original lists its retry, the retry links back, and the button's form posts to the retry route with a fresh key", async () => {
    const ws = await makeWorkspace("adm-retry-links");
    const original = await createExecutionFailure(runService(), ws);
    const operator = await clientFor(ws, "operator");
    const page = await operator.html(`/admin/operations/${original}`);
    const form = await one(page, "form[data-retry-form]");
    expect(form.attrs).toMatchObject({ method: "post", action: `/admin/operations/${original}/retry` });
    const key = (await one(page, "form[data-retry-form] input[name=idempotencyKey]")).attrs["value"] ?? "";
    expect(key).toMatch(/^[0-9a-f-]{36}$/);
    expect(squash((await one(page, "form[data-retry-form] button")).text)).toBe("Retry as new run");

    const newId = newRunOf(await retryFrom(operator, original, { idempotencyKey: key }));
    const newPage = await operator.html(`/admin/operations/${newId}`);
    expect((await one(newPage, "a[data-retry-of]")).attrs["href"]).toBe(`/admin/operations/${original}`);
    expect(await parseHtml(newPage, "[data-retried-by] a")).toEqual([]);

    const originalAgain = await operator.html(`/admin/operations/${original}`);
    const links = await parseHtml(originalAgain, "[data-retried-by] a");
    expect(links.map((l) => l.attrs["href"])).toEqual([`/admin/operations/${newId}`]);
    expect(await parseHtml(originalAgain, "a[data-retry-of]")).toEqual([]);
    // The timeline says it too.
    expect((await parseHtml(originalAgain, "#timeline .timeline__what")).map((e) => squash(e.text)).at(-1)).toBe("Retried as a new run");
  });
});

describe("the run page shows the output", () => {
  it("pretty-printed and escaped: markup in an output is text, never HTML", async () => {
    const ws = await makeWorkspace("adm-output");
    const svc = runService();
    const id = await createRunning(svc, ws);
    const output = { items: 3, note: "<script>alert('x')</script>", url: "https://example.test/a?b=1&c=2" };
    const done = await svc.complete(id, 1, { outcome: "succeeded", outputJson: JSON.stringify(output) });
    expect(done.ok).toBe(true);
    const html = await (await clientFor(ws, "viewer")).html(`/admin/operations/${id}`);
    expect(html).not.toContain("<script>alert");
    const pre = await one(html, "pre[data-output]");
    expect(pre.text).toBe(JSON.stringify(output, null, 2));
    expect((await one(html, "details.output")).attrs).toHaveProperty("open");
  });

  it("a long output starts collapsed; a run without output shows no output section", async () => {
    const ws = await makeWorkspace("adm-output-long");
    const svc = runService();
    const long = await createRunning(svc, ws);
    await svc.complete(long, 1, { outcome: "succeeded", outputJson: JSON.stringify({ rows: "r".repeat(5_000) }) });
    const none = await createExecutionFailure(svc, ws);
    const client = await clientFor(ws, "owner");
    expect((await one(await client.html(`/admin/operations/${long}`), "details.output")).attrs).not.toHaveProperty("open");
    expect(await parseHtml(await client.html(`/admin/operations/${none}`), "details.output")).toEqual([]);
  });
});
