/**
 * Helpers for the webhook tests: endpoints seeded straight into D1, a queue
 * that records each send with its delay, a receiver that answers from a
 * script and records what it was sent (the consumer's `fetch`, injected: no
 * network), and the delivery rows as stored.
 */
import { env } from "cloudflare:workers";
import { newWebhookEndpointId, newWebhookSecret } from "../../src/webhooks/ids";

export async function seedEndpoint(
  workspaceId: string,
  opts: { url?: string; eventTypes?: string[] | null } = {},
): Promise<{ id: string; secret: string; url: string }> {
  const id = newWebhookEndpointId();
  const secret = newWebhookSecret();
  const url = opts.url ?? `https://hooks.example.com/${id}`;
  await env.DB.prepare("INSERT INTO webhook_endpoints (id, workspace_id, url, description, event_types, secret, created_at) VALUES (?, ?, ?, NULL, ?, ?, ?)")
    .bind(id, workspaceId, url, opts.eventTypes ? JSON.stringify(opts.eventTypes) : null, secret, Date.now())
    .run();
  return { id, secret, url };
}

export interface Sent {
  body: unknown;
  delaySeconds: number | undefined;
}

/** A queue that records every message and its delay, and delivers nothing. */
export function delayRecorder(opts: { fail?: boolean } = {}): { queue: Queue; sent: Sent[] } {
  const sent: Sent[] = [];
  const metadata = { metrics: { backlogCount: 0, backlogBytes: 0 } };
  const queue: Queue = {
    async send(body, options) {
      if (opts.fail) throw new Error("injected: queue unavailable");
      sent.push({ body, delaySeconds: options?.delaySeconds });
      return { metadata };
    },
    async sendBatch(messages) {
      if (opts.fail) throw new Error("injected: queue unavailable");
      for (const m of messages) sent.push({ body: m.body, delaySeconds: m.delaySeconds });
      return { metadata };
    },
    async metrics() {
      return metadata.metrics;
    },
  };
  return { queue, sent };
}

export interface Received {
  url: string;
  headers: Record<string, string>;
  body: string;
  redirect: RequestInit["redirect"];
}

/** One scripted answer: a response, a thrown error, or never answering until aborted. */
export type Script = Response | Error | "hang";

/** A fetch that answers each call with the next script entry (the last one repeats) and records the request. */
export function scriptedReceiver(script: Script[]): { fetch: typeof fetch; received: Received[] } {
  const received: Received[] = [];
  const fetchFn = (async (input: RequestInfo | URL, init?: RequestInit) => {
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((v, k) => (headers[k] = v));
    received.push({ url: String(input), headers, body: typeof init?.body === "string" ? init.body : "", redirect: init?.redirect });
    const next = script[Math.min(received.length - 1, script.length - 1)]!;
    if (next === "hang") {
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    }
    if (next instanceof Error) throw next;
    return next.clone();
  }) as typeof fetch;
  return { fetch: fetchFn, received };
}

export interface DeliveryRowOf {
  message_id: string;
  endpoint_id: string;
  workspace_id: string;
  run_id: string;
  event_type: string;
  payload: string;
  status: string;
  attempts: number;
  next_attempt_at: number | null;
  last_status_code: number | null;
  last_error: string | null;
  attempt_log: string;
}

export async function deliveriesOf(runId: string): Promise<DeliveryRowOf[]> {
  const { results } = await env.DB.prepare("SELECT * FROM webhook_deliveries WHERE run_id = ? ORDER BY endpoint_id").bind(runId).all<DeliveryRowOf>();
  return results;
}
