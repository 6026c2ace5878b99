/**
 * What POST /api/v1/runs asks of D1 (the Worker's own binding, counted by
 * meteredDb; the tracker's calls are its own): the token lookup and the insert
 * that returns the row. A run the request created has no retries to read (it
 * did not exist before its insert); a replay's run may have some, so its answer
 * reads them.
 */
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { meteredDb } from "../../src/runs";
import { DEMO_BODY, apiClient, bodyOf, call, callWith, postInit, runEnvelope } from "../support/api";
import { runService } from "../support/fixtures";

describe("POST /api/v1/runs and D1", () => {
  it("a created run costs two round trips: the token lookup and the insert", async () => {
    const client = await apiClient("round-trips");
    // The token's first use also records "last used" (at most once a minute): not this figure.
    expect((await call("/api/v1/runs", postInit(client.token, DEMO_BODY))).status).toBe(202);
    const m = meteredDb(env.DB);

    const res = await callWith({ DB: m.db }, "/api/v1/runs", postInit(client.token, DEMO_BODY));
    expect(res.status).toBe(202);
    expect((await bodyOf(res, runEnvelope)).run).toMatchObject({ status: "queued", retriedBy: [] });
    expect(m.cost.roundTrips).toBe(2);
  });

  it("a replay answers the run with the retries made of it since", async () => {
    const client = await apiClient("round-trips-replay");
    // The first request's run, ended (through the service: no consumer races the test for it).
    const svc = runService();
    const first = await svc.create({ workspaceId: client.workspaceId, ...DEMO_BODY, idempotencyKey: "replay-retries", initiator: "api-token:test token" });
    if (!first.ok) throw new Error("not created");
    await svc.claim(first.run.id, 1);
    await svc.complete(first.run.id, 1, { outcome: "failed", message: "upstream said no" });
    const retried = await call(`/api/v1/runs/${first.run.id}/retry`, { method: "POST", token: client.token });
    expect(retried.status).toBe(202);
    const retry = await bodyOf(retried, runEnvelope);

    const replay = await call("/api/v1/runs", postInit(client.token, DEMO_BODY, { "idempotency-key": "replay-retries" }));
    expect(replay.status).toBe(200);
    expect((await bodyOf(replay, runEnvelope)).run).toMatchObject({ id: first.run.id, retriedBy: [retry.run.id] });
  });
});
