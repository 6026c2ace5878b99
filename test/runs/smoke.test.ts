import { expect, it } from "vitest";
import { auditActions, makeWorkspace, runService } from "../support/fixtures";

it("create, claim, concurrent complete: one transition, one event", async () => {
  const ws = await makeWorkspace();
  const svc = runService();
  const c = await svc.create({ workspaceId: ws, type: "demo.work", input: { steps: 1, stepMs: 0 }, initiator: "system:consumer" });
  expect(c.ok).toBe(true);
  if (!c.ok) return;
  const claim = await svc.claim(c.run.id, 1);
  expect(claim.ok).toBe(true);
  const [a, b] = await Promise.all([
    svc.complete(c.run.id, 1, { outcome: "succeeded" }),
    svc.failAttempt(c.run.id, 1, { reason: "handler.error", retryable: false, error: new Error("x") }),
  ]);
  expect([a.ok, b.ok].filter(Boolean)).toHaveLength(1);
  console.log(await auditActions(c.run.id));
});
