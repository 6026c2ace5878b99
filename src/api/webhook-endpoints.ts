/**
 * `/api/v1/webhook-endpoints`: a workspace's completion webhooks (contract
 * section 8). Create answers the signing secret once (`whsec_…`, Standard
 * Webhooks); list and get never show it; delete removes the endpoint and its
 * delivery log; `/{id}/deliveries` is the delivery log. Any API token of the
 * workspace may manage them (tokens carry no role; only owners mint them);
 * another workspace's endpoint is a 404.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import type { z } from "zod";
import { createEndpoint, MAX_ENDPOINTS_PER_WORKSPACE, deleteEndpoint, endpointDeliveries, getEndpoint, listEndpoints, type DeliveryLogEntry, type WebhookEndpoint } from "../webhooks/endpoints";
import { requireApiToken, type ApiEnv } from "./auth";
import { readJsonBody } from "./body";
import { BEARER, documented, json, jsonBody, problemResponses } from "./openapi";
import { ApiProblem, problems } from "./problem";
import {
  createdWebhookEndpointSchema,
  createWebhookEndpointBody,
  webhookDeliveriesSchema,
  webhookEndpointEnvelopeSchema,
  webhookEndpointIdParams,
  webhookEndpointListSchema,
  type WebhookDeliveryJson,
  type WebhookEndpointJson,
} from "./schemas";

const MAX_BODY_BYTES = 8 * 1024;

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

function endpointJson(e: WebhookEndpoint): WebhookEndpointJson {
  return { id: e.id, url: e.url, description: e.description, eventTypes: e.eventTypes, createdAt: iso(e.createdAt) };
}

function deliveryJson(d: DeliveryLogEntry): WebhookDeliveryJson {
  return {
    webhookId: d.messageId,
    runId: d.runId,
    eventType: d.eventType,
    status: d.status,
    attempts: d.attempts,
    nextAttemptAt: isoOrNull(d.nextAttemptAt),
    lastStatusCode: d.lastStatusCode,
    lastError: d.lastError,
    tries: d.tries.map((t) => ({ attempt: t.attempt, at: iso(t.at), statusCode: t.statusCode, error: t.error, excerpt: t.excerpt })),
    createdAt: iso(d.createdAt),
  };
}

function fieldErrors(error: z.ZodError) {
  return error.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

export const webhookEndpointsApi = new OpenAPIHono<ApiEnv>();

// On every path under it, known or not: a request without a valid token learns nothing (401 before 404/405).
webhookEndpointsApi.use("*", requireApiToken);

const acting = (principal: { tokenName: string; tokenId: string }) => ({ actor: `api-token:${principal.tokenName}` as const, actorId: principal.tokenId });

const LOCATION = { Location: { description: "The endpoint's URL: /api/v1/webhook-endpoints/{id}.", required: true, schema: { type: "string" as const } } };

documented(
  webhookEndpointsApi,
  {
    method: "post",
    path: "/",
    summary: "Create a webhook endpoint",
    description:
      `Registers a URL that receives a signed POST (Standard Webhooks) when a run of the workspace completes. The answer carries the signing secret, once: list and get never show it. At most ${MAX_ENDPOINTS_PER_WORKSPACE} endpoints per workspace (409 webhook-endpoint-limit).`,
    security: BEARER,
    request: { body: jsonBody(createWebhookEndpointBody) },
    responses: {
      201: json(createdWebhookEndpointSchema, "Created: the endpoint and its signing secret (shown only here).", LOCATION),
      ...problemResponses(400, 401, 405, 409, 413, 415, 422),
    },
  },
  bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw problems.tooLarge(MAX_BODY_BYTES);
    },
  }),
  async (c) => {
    const raw = await readJsonBody(c);
    const body = createWebhookEndpointBody.safeParse(raw);
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

documented(
  webhookEndpointsApi,
  {
    method: "get",
    path: "/",
    summary: "List webhook endpoints",
    description: "The workspace's webhook endpoints, oldest first, without their secrets.",
    security: BEARER,
    responses: { 200: json(webhookEndpointListSchema, "The workspace's endpoints."), ...problemResponses(401, 405) },
  },
  async (c) => {
    const endpoints = await listEndpoints(c.env.DB, c.get("principal").workspaceId);
    return c.json({ endpoints: endpoints.map(endpointJson) });
  },
);

documented(
  webhookEndpointsApi,
  {
    method: "get",
    path: "/{id}",
    summary: "Get a webhook endpoint",
    description: "One endpoint, without its secret.",
    security: BEARER,
    request: { params: webhookEndpointIdParams },
    responses: { 200: json(webhookEndpointEnvelopeSchema, "The endpoint."), ...problemResponses(401, 404, 405) },
  },
  async (c) => {
    const endpoint = await getEndpoint(c.env.DB, c.get("principal").workspaceId, c.req.param("id") ?? "");
    if (!endpoint) throw problems.notFound("webhook endpoint");
    return c.json({ endpoint: endpointJson(endpoint) });
  },
);

documented(
  webhookEndpointsApi,
  {
    method: "get",
    path: "/{id}/deliveries",
    summary: "A webhook endpoint's delivery log",
    description: "The endpoint's latest 50 deliveries, newest first, each with its tries. No payload and no secret.",
    security: BEARER,
    request: { params: webhookEndpointIdParams },
    responses: { 200: json(webhookDeliveriesSchema, "The delivery log."), ...problemResponses(401, 404, 405) },
  },
  async (c) => {
    const endpoint = await getEndpoint(c.env.DB, c.get("principal").workspaceId, c.req.param("id") ?? "");
    if (!endpoint) throw problems.notFound("webhook endpoint");
    const deliveries = await endpointDeliveries(c.env.DB, endpoint.id);
    return c.json({ deliveries: deliveries.map(deliveryJson) });
  },
);

documented(
  webhookEndpointsApi,
  {
    method: "delete",
    path: "/{id}",
    summary: "Delete a webhook endpoint",
    description: "Removes the endpoint and its delivery log; deliveries not yet made are not made.",
    security: BEARER,
    request: { params: webhookEndpointIdParams },
    responses: { 204: { description: "Deleted, with its delivery log." }, ...problemResponses(401, 404, 405) },
  },
  async (c) => {
    const principal = c.get("principal");
    const endpoint = await getEndpoint(c.env.DB, principal.workspaceId, c.req.param("id") ?? "");
    if (!endpoint) throw problems.notFound("webhook endpoint");
    // Lost only to a concurrent delete of the same endpoint: gone either way.
    await deleteEndpoint(c.env.DB, principal.workspaceId, endpoint, acting(principal));
    return c.body(null, 204);
  },
);
