/**
 * `/api/v1/webhook-endpoints`: a workspace's completion webhooks (contract
 * section 8). Create answers the signing secret once (`whsec_…`, Standard
 * Webhooks); list and get never show it; delete removes the endpoint and its
 * delivery log; `/{id}/deliveries` is the delivery log. Any API token of the
 * workspace may manage them (tokens carry no role; only owners mint them);
 * another workspace's endpoint is a 404.
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { createEndpoint, deleteEndpoint, endpointDeliveries, endpointRequest, getEndpoint, listEndpoints, type WebhookEndpoint } from "../webhooks/endpoints";
import { requireApiToken, type ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";

const MAX_BODY_BYTES = 8 * 1024;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

function endpointJson(e: WebhookEndpoint) {
  return { id: e.id, url: e.url, description: e.description, eventTypes: e.eventTypes, createdAt: iso(e.createdAt) };
}

function fieldErrors(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

export const webhookEndpointsApi = new Hono<ApiEnv>();

webhookEndpointsApi.use("*", requireApiToken);

const acting = (principal: { tokenName: string; tokenId: string }) => ({ actor: `api-token:${principal.tokenName}` as const, actorId: principal.tokenId });

webhookEndpointsApi.post(
  "/",
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw problems.tooLarge(MAX_BODY_BYTES);
    },
  }),
  async (c) => {
    const contentType = c.req.header("content-type");
    if (contentType && !/^application\/(.+\+)?json\b/i.test(contentType)) throw problems.unsupportedMediaType();
    let text: string;
    try {
      text = await c.req.text();
    } catch {
      // A body that broke while it was read (a dropped upload) is the client's to send again.
      throw problems.unreadableBody();
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      throw problems.malformedJson();
    }
    const body = endpointRequest.safeParse(raw);
    if (!body.success) throw problems.validation("The request body is not a webhook endpoint.", fieldErrors(body.error));
    const principal = c.get("principal");
    const created = await createEndpoint(c.env, principal.workspaceId, body.data, acting(principal));
    if (!created.ok) {
      if (created.status === 409) throw new ApiProblem(409, "webhook-endpoint-limit", "Too many webhook endpoints", created.message);
      throw problems.validation(created.message, [{ path: created.field, message: created.message }]);
    }
    c.header("Location", `/api/v1/webhook-endpoints/${created.endpoint.id}`);
    // The secret is in this answer only; the API's Cache-Control: no-store keeps it out of caches.
    return c.json({ endpoint: endpointJson(created.endpoint), secret: created.secret }, 201);
  },
);

webhookEndpointsApi.get("/", async (c) => {
  const endpoints = await listEndpoints(c.env.DB, c.get("principal").workspaceId);
  return c.json({ endpoints: endpoints.map(endpointJson) });
});

webhookEndpointsApi.get("/:id", async (c) => {
  const endpoint = await getEndpoint(c.env.DB, c.get("principal").workspaceId, c.req.param("id"));
  if (!endpoint) throw problems.notFound("webhook endpoint");
  return c.json({ endpoint: endpointJson(endpoint) });
});

/** The delivery log: the endpoint's latest 50 deliveries, newest first, with their tries. */
webhookEndpointsApi.get("/:id/deliveries", async (c) => {
  const endpoint = await getEndpoint(c.env.DB, c.get("principal").workspaceId, c.req.param("id"));
  if (!endpoint) throw problems.notFound("webhook endpoint");
  const deliveries = await endpointDeliveries(c.env.DB, endpoint.id);
  return c.json({
    deliveries: deliveries.map((d) => ({
      webhookId: d.messageId,
      runId: d.runId,
      eventType: d.eventType,
      status: d.status,
      attempts: d.attempts,
      nextAttemptAt: iso(d.nextAttemptAt),
      lastStatusCode: d.lastStatusCode,
      lastError: d.lastError,
      tries: d.tries.map((t) => ({ attempt: t.attempt, at: iso(t.at), statusCode: t.statusCode, error: t.error, excerpt: t.excerpt })),
      createdAt: iso(d.createdAt),
    })),
  });
});

webhookEndpointsApi.delete("/:id", async (c) => {
  const principal = c.get("principal");
  const endpoint = await getEndpoint(c.env.DB, principal.workspaceId, c.req.param("id"));
  if (!endpoint) throw problems.notFound("webhook endpoint");
  // Lost only to a concurrent delete of the same endpoint: gone either way.
  await deleteEndpoint(c.env.DB, principal.workspaceId, endpoint, acting(principal));
  return c.body(null, 204);
});
