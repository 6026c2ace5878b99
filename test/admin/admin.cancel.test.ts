/**
 * Cancel from the admin (contract section 7, issue 10 part 1; display states
 * of section 6, issue 14): the run page offers it to owners and operators on
 * live runs only, the form needs the admin's own Origin (CSRF), a viewer is
 * refused (403) even with a hand-made form, another workspace's run is a 404,
 * and the run then reads "Cancelling", then "Cancelled by <who>", each with
 * its own badge, in the list filters too.
 */
import { describe, expect, it } from "vitest";
import type { MembershipRole } from "../../src/db/schema";
import { ORIGIN } from "../support/api";
import { makeWorkspace } from "../support/fixtures";
import { one, parseHtml, seedUser, signIn, type AdminClient } from "../support/admin";
import { actionsOf, createRun, getRun, tracker } from "../support/execution";
import { eventsOf } from "../support/runs";

async function member(ws: string, role: MembershipRole): Promise<{ client: AdminClient; email: string }> {
  const user = await seedUser([[ws, role]], role);
  return { client: await signIn(user.id), email: user.email };
}

async function queuedRun(ws: string): Promise<string> {
  return (await createRun(ws, { steps: 3, stepMs: 0 })).run.id;
}

async function runningRun(ws: string): Promise<string> {
  const id = await queuedRun(ws);
  expect(await tracker(id).claim({ runId: id, dispatch: 1 })).toMatchObject({ ok: true });
  return id;
}

const page = (id: string) => `/admin/operations/${id}`;
const cancelPath = (id: string) => `/admin/operations/${id}/cancel`;

describe("who may cancel from the admin", () => {
  for (const role of ["owner", "operator"] as const) {
    it(`an ${role} sees the Cancel form on a live run and cancels it; the events name them`, async () => {
      const ws = await makeWorkspace(`admin-cancel-${role}`);
      const { client, email } = await member(ws, role);
      const id = await queuedRun(ws);
      const html = await client.html(page(id));
      const form = await one(html, `form[action="${cancelPath(id)}"]`);
      expect(form.attrs.method).toBe("post");
      expect(html).toContain("Cancel this run");

      const res = await client.post(cancelPath(id), { reason: "duplicate of another run" });
      expect(res.status).toBe(303);
      expect(res.headers.get("location")).toBe(page(id));
      expect(await getRun(id)).toMatchObject({ status: "completed", outcome: "cancelled", cancelRequestedBy: `user:${email}` });
      const events = await eventsOf(id);
      expect(events.slice(1).map((e) => [e.action, e.actor])).toEqual([
        ["run.cancel_requested", `user:${email}`],
        ["run.cancelled", `user:${email}`],
      ]);
      expect(events[1]!.metadata).toMatchObject({ reason: "duplicate of another run" });

      // Terminal now: no form, a "Cancelled by" badge and callout; posting again is a 409 that changes nothing.
      const after = await client.html(page(id));
      expect(after).not.toContain(`action="${cancelPath(id)}"`);
      const summary = await one(after, "#run-summary");
      expect(summary.attrs["data-display"]).toBe("cancelled");
      expect(summary.attrs["data-label"]).toBe(`Cancelled by ${email}`);
      expect(after).toContain("duplicate of another run");
      expect((await client.post(cancelPath(id), {})).status).toBe(409);
      expect((await actionsOf(id)).filter((a) => a === "run.cancelled")).toHaveLength(1);
    });
  }

  it("a viewer sees no Cancel form, and a forced post is a 403 that changes nothing", async () => {
    const ws = await makeWorkspace("admin-cancel-viewer");
    const { client } = await member(ws, "viewer");
    const id = await queuedRun(ws);
    const html = await client.html(page(id));
    expect(html).not.toContain(`action="${cancelPath(id)}"`);
    expect((await client.post(cancelPath(id), { reason: "forced" })).status).toBe(403);
    expect(await getRun(id)).toMatchObject({ status: "queued", cancelRequestedAt: null });
    expect(await actionsOf(id)).toEqual(["run.queued"]);
  });

  it("another workspace's run is a 404 and cancels nothing", async () => {
    const mine = await makeWorkspace("admin-cancel-mine");
    const theirs = await makeWorkspace("admin-cancel-theirs");
    const { client } = await member(mine, "owner");
    const id = await queuedRun(theirs);
    expect((await client.post(cancelPath(id), {})).status).toBe(404);
    expect((await client.post(cancelPath("run_01J0000000000000000000000Q"), {})).status).toBe(404);
    expect(await actionsOf(id)).toEqual(["run.queued"]);
  });

  it("CSRF: a cancel posted without the admin's Origin, or from a foreign one, is refused (403) and cancels nothing", async () => {
    const ws = await makeWorkspace("admin-cancel-csrf");
    const { client } = await member(ws, "owner");
    const id = await queuedRun(ws);
    const refused: Array<Record<string, string>> = [{}, { origin: "https://evil.example" }, { origin: `${ORIGIN}.evil.example` }];
    for (const headers of refused) {
      expect((await client.post(cancelPath(id), {}, headers)).status, JSON.stringify(headers)).toBe(403);
    }
    expect(await actionsOf(id)).toEqual(["run.queued"]);
    expect((await client.post(cancelPath(id), {})).status).toBe(303);
  });

  it("a reason over 500 characters is refused with a clear page, and nothing is cancelled", async () => {
    const ws = await makeWorkspace("admin-cancel-long");
    const { client } = await member(ws, "operator");
    const id = await queuedRun(ws);
    const res = await client.post(cancelPath(id), { reason: "x".repeat(501) });
    expect(res.status).toBe(400);
    expect(await res.text()).toContain("at most 500 characters");
    expect(await actionsOf(id)).toEqual(["run.queued"]);
  });
});

describe("Cancelling, then Cancelled", () => {
  it("a running run reads Cancelling (who asked, by when it ends) until its attempt stops, then Cancelled by them; the list filters find each", async () => {
    const ws = await makeWorkspace("admin-cancelling");
    const { client, email } = await member(ws, "operator");
    const id = await runningRun(ws);
    expect((await client.post(cancelPath(id), { reason: "" })).status).toBe(303);

    const cancelling = await client.html(page(id));
    const summary = await one(cancelling, "#run-summary");
    expect(summary.attrs["data-display"]).toBe("cancelling");
    expect(summary.attrs["data-label"]).toBe("Cancelling");
    expect((await one(cancelling, "[data-cancelled-by]")).text).toBe(email);
    expect(cancelling).not.toContain(`action="${cancelPath(id)}"`);
    expect((await one(cancelling, ".badge--cancelling")).text).toContain("Cancelling");
    const listed = await client.html("/admin/operations?display=cancelling");
    expect((await parseHtml(listed, "tr[data-run-id]")).map((r) => r.attrs["data-run-id"])).toEqual([id]);
    // The live refresh answers with the (now empty) actions, since the run can no longer be cancelled.
    const live = await client.html(`${page(id)}/live`);
    expect(live).toContain('id="run-actions"');

    await tracker(id).report({ kind: "stopped", attempt: 1 });
    const cancelled = await client.html(page(id));
    expect((await one(cancelled, "#run-summary")).attrs["data-label"]).toBe(`Cancelled by ${email}`);
    expect((await one(cancelled, ".badge--cancelled")).text).toContain(`Cancelled by ${email}`);
    const timeline = (await parseHtml(cancelled, "#timeline .timeline__what")).map((e) => e.text);
    expect(timeline).toEqual(["Queued", "Attempt started", "Cancel requested", "Cancelled"]);
    const list = await client.html("/admin/operations?display=cancelled");
    expect((await parseHtml(list, "tr[data-run-id]")).map((r) => r.attrs["data-run-id"])).toEqual([id]);
    expect(await client.html("/admin/operations?display=cancelling")).not.toContain(`data-run-id="${id}"`);
  });
});
