/**
 * Completion webhooks end to end: the production Worker under `wrangler dev`
 * (real queue, delays, cron-less) posts to REAL local HTTP receivers, which
 * verify every request with `standardwebhooks`' own `verify` and the secret
 * the API returned once. One receiver answers at once; the other fails 3
 * times, then succeeds: it must see one logical event (one webhook-id, the
 * same as the first receiver's) on every try, and the delivery log must say
 * delivered after 4 tries, with nothing sent after.
 *
 * No durations are asserted: states are waited for with deadlines of minutes.
 * Retries start at 1 s here (WEBHOOK_RETRY_BASE_SECONDS) so the wait is short.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sleep } from "../../bench/lib/dev";
import { LocalRuntime } from "./support/local-runtime";

const MIN = 60_000;

interface Hit {
  webhookId: string;
  verified: boolean;
  payload: { type: string; data: Record<string, unknown> } | null;
  answered: number;
}

/** A receiver that verifies each request with `secret` and answers with `answerFor(n)` (n = 1, 2, …). */
class Receiver {
  secret = "";
  readonly hits: Hit[] = [];
  private server: Server | null = null;

  constructor(private readonly answerFor: (n: number) => number) {}

  async start(): Promise<string> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let payload: Hit["payload"] = null;
        try {
          payload = new Webhook(this.secret).verify(body, flat(req.headers)) as Hit["payload"];
        } catch {
          payload = null;
        }
        const answered = payload === null ? 400 : this.answerFor(this.hits.length + 1);
        this.hits.push({ webhookId: String(req.headers["webhook-id"] ?? ""), verified: payload !== null, payload, answered });
        res.writeHead(answered, { "content-type": "text/plain" }).end(answered < 300 ? "ok" : "not now");
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, "127.0.0.1", resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}

function flat(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (typeof v === "string") out[k] = v;
  return out;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() >= deadline) throw new Error(`${what} did not happen within ${timeoutMs / 1000} s`);
    await sleep(500);
  }
}

describe("completion webhooks through wrangler dev to real receivers", () => {
  let rt: LocalRuntime;
  const steady = new Receiver(() => 204);
  const flaky = new Receiver((n) => (n <= 3 ? 503 : 200));

  beforeAll(async () => {
    rt = await LocalRuntime.start("webhooks", "local", { WEBHOOK_RETRY_BASE_SECONDS: "1" });
  }, 5 * MIN);

  afterAll(async () => {
    await Promise.all([rt?.stop(), steady.stop(), flaky.stop()]);
  }, MIN);

  const api = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${rt.dev.base}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${rt.dev.token}`, "content-type": "application/json", ...init.headers },
      signal: AbortSignal.timeout(30_000),
    });
    const text = await res.text();
    return { status: res.status, json: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };

  async function register(receiver: Receiver): Promise<string> {
    const url = await receiver.start();
    const { status, json } = await api("/webhook-endpoints", { method: "POST", body: JSON.stringify({ url }) });
    expect(status, JSON.stringify(json)).toBe(201);
    receiver.secret = json.secret as string;
    return (json.endpoint as { id: string }).id;
  }

  async function deliveryOf(endpointId: string): Promise<{ webhookId: string; status: string; attempts: number; tries: { statusCode: number | null }[] } | undefined> {
    const { json } = await api(`/webhook-endpoints/${endpointId}/deliveries`);
    return (json.deliveries as Array<{ webhookId: string; status: string; attempts: number; tries: { statusCode: number | null }[] }>)[0];
  }

  it("one signed event per completed run; a receiver failing 3 times gets the same webhook-id on every try, then it is delivered", async () => {
    const steadyId = await register(steady);
    const flakyId = await register(flaky);

    const runId = await rt.createRun({ steps: 1, stepMs: 0 });
    const run = await rt.waitTerminal(runId, 5 * MIN);
    expect(run.outcome).toBe("succeeded");

    const steadyDelivery = await waitFor("the steady receiver's delivery", async () => {
      const d = await deliveryOf(steadyId);
      return d?.status === "delivered" ? d : undefined;
    }, 5 * MIN);
    const flakyDelivery = await waitFor("the flaky receiver's delivery", async () => {
      const d = await deliveryOf(flakyId);
      return d?.status === "delivered" ? d : undefined;
    }, 5 * MIN);

    // The steady receiver: exactly one request, verified, about this run.
    expect(steady.hits).toHaveLength(1);
    expect(steady.hits[0]).toMatchObject({ verified: true, answered: 204, webhookId: steadyDelivery.webhookId });
    expect(steady.hits[0]!.payload).toMatchObject({ type: "run.completed", data: { runId, outcome: "succeeded", status: "completed" } });

    // The flaky one: 4 tries, every one verified, one webhook-id (the same event as the steady one's).
    expect(flaky.hits.map((h) => h.answered)).toEqual([503, 503, 503, 200]);
    expect(flaky.hits.every((h) => h.verified)).toBe(true);
    expect(new Set(flaky.hits.map((h) => h.webhookId))).toEqual(new Set([steadyDelivery.webhookId]));
    expect(flakyDelivery).toMatchObject({ status: "delivered", attempts: 4, webhookId: steadyDelivery.webhookId });
    expect(flakyDelivery.tries.map((t) => t.statusCode)).toEqual([503, 503, 503, 200]);

    // Delivered means done: a later cron run re-drives nothing and no receiver hears of it again.
    await fetch(`${rt.dev.base}/cdn-cgi/local/scheduled`, { signal: AbortSignal.timeout(60_000) });
    const after = await deliveryOf(flakyId);
    expect(after).toMatchObject({ status: "delivered", attempts: 4 });
    expect(flaky.hits).toHaveLength(4);
    expect(steady.hits).toHaveLength(1);
  });
});
