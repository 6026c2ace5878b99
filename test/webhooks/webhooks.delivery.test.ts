/**
 * One try of a delivery (src/webhooks/deliver.ts) against a scripted
 * receiver (the consumer's fetch, injected: no network): the request is a
 * Standard Webhooks request that `standardwebhooks` verifies; a failing
 * receiver is retried on the backoff schedule with the same webhook-id until
 * it answers 2xx or the tries are spent (then "failed", given up); stale,
 * early and orphaned messages try nothing; every try is in the log.
 */
import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";
import { handleQueue } from "../../src/queue/handler";
import { queueRole } from "../../src/queue/routing";
import type { WebhookConfig } from "../../src/webhooks/config";
import { EXCERPT_CHARS, tryDelivery, type LoggedTry } from "../../src/webhooks/deliver";
import type { WebhookMessage } from "../../src/webhooks/messages";
import { retryDelaySeconds } from "../../src/webhooks/schedule";
import { makeWorkspace, manualClock } from "../support/fixtures";
import { newRun, parsed } from "../support/runs";
import { deliveriesOf, delayRecorder, scriptedReceiver, seedEndpoint, type Script } from "../support/webhooks";

const CONFIG: WebhookConfig = { WEBHOOK_RETRY_BASE_SECONDS: 5, WEBHOOK_MAX_ATTEMPTS: 4, WEBHOOK_TIMEOUT_MS: 1000, allowPrivateTargets: false };
const HALF = () => 0.5; // jitter factor 1.0

/** A completed run with one endpoint: its pending delivery and the first-try message. */
async function pendingDelivery(label: string) {
  const ws = await makeWorkspace(label);
  const endpoint = await seedEndpoint(ws);
  const announced = delayRecorder();
  const svc = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, webhooks: announced.queue });
  const run = await newRun(svc, ws);
  await svc.claim(run.id, 1);
  await svc.complete(run.id, 1, { outcome: "succeeded" });
  const [row] = await deliveriesOf(run.id);
  const first = announced.sent[0]!.body as WebhookMessage;
  return { ws, endpoint, run, row: row!, first };
}

function harness(script: Script[], start: number) {
  const queue = delayRecorder();
  const receiver = scriptedReceiver(script);
  const clock = manualClock(start);
  const testEnv = { ...env, WEBHOOKS_QUEUE: queue.queue };
  const attempt = (m: WebhookMessage) => tryDelivery(testEnv, m, { fetch: receiver.fetch, now: clock.now, random: HALF, config: CONFIG });
  return { queue, receiver, clock, attempt };
}

const logOf = async (runId: string) => parsed<LoggedTry[]>((await deliveriesOf(runId))[0]!.attempt_log);

describe("a try", () => {
  it("POSTs the payload signed per Standard Webhooks, which standardwebhooks verifies with the endpoint's secret", async () => {
    const d = await pendingDelivery("deliver-signed");
    const h = harness([new Response("ok", { status: 200 })], Date.now());
    expect(await h.attempt(d.first)).toBe("delivered");
    const [req] = h.receiver.received;
    expect(req!.url).toBe(d.endpoint.url);
    expect(req!.redirect).toBe("manual");
    expect(req!.headers["webhook-id"]).toBe(d.row.message_id);
    expect(req!.headers["content-type"]).toBe("application/json");
    expect(new Webhook(d.endpoint.secret).verify(req!.body, req!.headers)).toEqual(JSON.parse(d.row.payload));
    // Another secret does not verify it.
    expect(() => new Webhook(`whsec_${btoa("another secret of 32 bytes......")}`).verify(req!.body, req!.headers)).toThrow();
    const [row] = await deliveriesOf(d.run.id);
    expect(row).toMatchObject({ status: "delivered", attempts: 1, next_attempt_at: null, last_status_code: 200, last_error: null });
    expect(h.queue.sent).toHaveLength(0);
  });

  it("a receiver failing 3 times then answering 2xx: 4 tries, one webhook-id, delays on the schedule, each try logged", async () => {
    const d = await pendingDelivery("deliver-3-fails");
    const h = harness(
      [new Response("down", { status: 503 }), new Error("connection reset"), new Response("nope", { status: 500 }), new Response(null, { status: 204 })],
      Date.now(),
    );
    let message = d.first;
    const outcomes: string[] = [];
    for (let i = 0; i < 4; i++) {
      outcomes.push(await h.attempt(message));
      if (i < 3) {
        const next = h.queue.sent.at(-1)!;
        expect(next.delaySeconds).toBe(retryDelaySeconds(i + 1, CONFIG.WEBHOOK_RETRY_BASE_SECONDS, HALF));
        message = next.body as WebhookMessage;
        h.clock.advance(next.delaySeconds! * 1000);
      }
    }
    expect(outcomes).toEqual(["retry_scheduled", "retry_scheduled", "retry_scheduled", "delivered"]);
    expect(h.queue.sent.map((s) => s.delaySeconds)).toEqual([5, 10, 20]);
    expect(new Set(h.receiver.received.map((r) => r.headers["webhook-id"]))).toEqual(new Set([d.row.message_id]));
    for (const r of h.receiver.received) expect(() => new Webhook(d.endpoint.secret).verify(r.body, r.headers)).not.toThrow();
    const log = await logOf(d.run.id);
    expect(log.map((t) => [t.attempt, t.statusCode])).toEqual([
      [1, 503],
      [2, null],
      [3, 500],
      [4, 204],
    ]);
    expect(log[1]!.error).toContain("connection reset");
    expect((await deliveriesOf(d.run.id))[0]).toMatchObject({ status: "delivered", attempts: 4 });
  });

  it("gives up after the configured tries: status failed, no next try, the last answer kept", async () => {
    const d = await pendingDelivery("deliver-give-up");
    const h = harness([new Response("still down", { status: 502 })], Date.now());
    let message = d.first;
    const outcomes: string[] = [];
    for (let i = 0; i < CONFIG.WEBHOOK_MAX_ATTEMPTS; i++) {
      outcomes.push(await h.attempt(message));
      const next = h.queue.sent.at(-1);
      if (next && i < CONFIG.WEBHOOK_MAX_ATTEMPTS - 1) {
        message = next.body as WebhookMessage;
        h.clock.advance(next.delaySeconds! * 1000);
      }
    }
    expect(outcomes).toEqual(["retry_scheduled", "retry_scheduled", "retry_scheduled", "gave_up"]);
    expect(h.queue.sent).toHaveLength(CONFIG.WEBHOOK_MAX_ATTEMPTS - 1);
    expect((await deliveriesOf(d.run.id))[0]).toMatchObject({ status: "failed", attempts: 4, next_attempt_at: null, last_status_code: 502 });
  });

  it("a duplicate message, or one for a try already made, tries nothing", async () => {
    const d = await pendingDelivery("deliver-stale");
    const h = harness([new Response("down", { status: 503 })], Date.now());
    expect(await h.attempt(d.first)).toBe("retry_scheduled");
    // The same first-try message delivered again (at-least-once queue): stale.
    expect(await h.attempt(d.first)).toBe("stale");
    expect(h.receiver.received).toHaveLength(1);
  });

  it("a message that arrives before its try is due is sent again with the remaining delay, and tries nothing", async () => {
    const d = await pendingDelivery("deliver-early");
    const h = harness([new Response("down", { status: 503 })], Date.now());
    await h.attempt(d.first);
    const retry = h.queue.sent[0]!;
    h.clock.advance(2000);
    expect(await h.attempt(retry.body as WebhookMessage)).toBe("not_due");
    expect(h.queue.sent[1]).toEqual({ body: retry.body, delaySeconds: retry.delaySeconds! - 2 });
    expect(h.receiver.received).toHaveLength(1);
  });

  it("a receiver that never answers is cut off at the timeout and retried", async () => {
    const d = await pendingDelivery("deliver-timeout");
    const h = harness(["hang"], Date.now());
    expect(await h.attempt(d.first)).toBe("retry_scheduled");
    const [row] = await deliveriesOf(d.run.id);
    expect(row).toMatchObject({ status: "pending", last_status_code: null, last_error: `No answer within ${CONFIG.WEBHOOK_TIMEOUT_MS} ms.` });
  });

  it("a redirect is a failed try, not followed; a failed answer keeps only a short sanitised excerpt", async () => {
    const d = await pendingDelivery("deliver-redirect");
    const big = `<script>alert(1)</script> api_key=sk_live_abcdefghijklmnop ${"x".repeat(5000)}`;
    const h = harness([new Response(null, { status: 302, headers: { location: "http://169.254.169.254/" } }), new Response(big, { status: 400 })], Date.now());
    await h.attempt(d.first);
    expect(h.receiver.received).toHaveLength(1);
    expect((await deliveriesOf(d.run.id))[0]).toMatchObject({ last_status_code: 302, last_error: "Answered HTTP 302; redirects are not followed." });
    h.clock.advance(h.queue.sent[0]!.delaySeconds! * 1000);
    await h.attempt(h.queue.sent[0]!.body as WebhookMessage);
    const excerpt = (await logOf(d.run.id))[1]!.excerpt!;
    expect([...excerpt].length).toBeLessThanOrEqual(EXCERPT_CHARS);
    expect(excerpt).not.toContain("sk_live_abcdefghijklmnop");
  });

  it("a delivery whose endpoint was deleted tries nothing", async () => {
    const d = await pendingDelivery("deliver-gone");
    await env.DB.prepare("DELETE FROM webhook_endpoints WHERE id = ?").bind(d.endpoint.id).run();
    expect(await deliveriesOf(d.run.id)).toHaveLength(0);
    const h = harness([new Response("ok")], Date.now());
    expect(await h.attempt(d.first)).toBe("gone");
    expect(h.receiver.received).toHaveLength(0);
  });
});

describe("the webhooks queue", () => {
  it("is routed to the webhooks consumer, which acks a malformed message (it can never succeed)", async () => {
    expect(queueRole("webhooks")).toBe("webhooks");
    const batch = createMessageBatch<unknown>("webhooks", [{ id: "q1", timestamp: Date.now(), attempts: 1, body: { v: 1, messageId: "nope" } }]);
    const ctx = createExecutionContext();
    expect(await handleQueue(batch, env, ctx)).toBe(true);
    const result = await getQueueResult(batch, ctx);
    expect(result.explicitAcks).toEqual(["q1"]);
    expect(result.retryMessages).toEqual([]);
  });
});
