/**
 * The API's shapes as zod schemas, in one place: the routes validate requests
 * with them, the RPC entrypoint validates its arguments with them, and the
 * OpenAPI document (src/api/openapi.ts) is generated from them. `z` comes from
 * `@hono/zod-openapi`, which adds `.openapi()` (a component name and examples)
 * to zod's types; the schemas are plain zod otherwise.
 *
 * The response schemas are the type of what src/api/serialize.ts builds
 * (`RunJson`, `RunEventJson`), so a field added there and not here fails the
 * typecheck, and test/api/api.openapi.test.ts validates real answers against
 * the document.
 */
import { z } from "@hono/zod-openapi";
import { WEBHOOK_DELIVERY_STATUSES } from "../db/schema";
import { DETECTORS, DISPLAY_STATES, OUTCOMES, RUN_STATUSES, type ReasonFamily } from "../lifecycle";
import { MAX_CANCEL_REASON_LENGTH } from "../runs";
import { EXCERPT_CHARS, MAX_LOGGED_TRIES } from "../webhooks/deliver";
import { endpointRequest } from "../webhooks/endpoints";
import { WEBHOOK_EVENT_TYPES } from "../webhooks/events";
import { ENDPOINT_ID, MESSAGE_ID } from "../webhooks/messages";

// ---------- requests ----------

export const createRunBody = z
  .object({
    type: z.string().min(1).max(200).openapi({ description: "A registered operation type (see GET /api/v1/policies).", example: "http.export" }),
    input: z.unknown().optional().openapi({ description: "The type's input, checked against its schema (422 with errors[].path when it fails)." }),
  })
  .strict()
  .openapi("CreateRunRequest");

/** `limit` in decimal digits only: Number() would also take "0x10", "1e1" and " 5". */
const DECIMAL_LIMIT = /^[0-9]{1,6}$/;

export const listRunsQuery = z
  .object({
    status: z.enum(RUN_STATUSES).optional(),
    type: z.string().min(1).max(200).optional(),
    display: z.enum(DISPLAY_STATES).optional(),
    limit: z
      .string()
      .regex(DECIMAL_LIMIT, "must be a decimal integer")
      .transform(Number)
      .pipe(z.number().int().min(1).max(100))
      .default(20)
      // The document shows the parameter as it is sent (a string of digits), not the number it becomes.
      .openapi({ param: { description: "Page size, 1–100 in decimal digits (default 20)." }, type: "string", pattern: DECIMAL_LIMIT.source, default: "20" }),
    cursor: z.string().max(200).optional().openapi({ param: { description: "The previous page's nextCursor (opaque)." } }),
  })
  .strict();

/** `POST /runs/{id}/cancel`: optional as a whole, and so is its `reason` (kept in the audit events). */
export const cancelRunBody = z
  .object({
    reason: z
      .string()
      .trim()
      .min(1)
      .max(MAX_CANCEL_REASON_LENGTH)
      .optional()
      .openapi({ description: `Why, in the operator's words (at most ${MAX_CANCEL_REASON_LENGTH} characters); kept in the run's audit events.` }),
  })
  .strict()
  .openapi("CancelRunRequest");

/** `POST /runs/{id}/retry`: no fields (the new run takes the original's type and input); an empty body or `{}`. */
export const retryRunBody = z.object({}).strict().openapi("RetryRunRequest");

/** A run id in a path: any string (an unknown or foreign id is a 404, not a 400). */
export const runIdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "run_01JH00000000000000000000AB" }),
});

/** `Idempotency-Key`: 1–255 visible ASCII characters. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export const createRunHeaders = z.object({
  "Idempotency-Key": z
    .string()
    .regex(IDEMPOTENCY_KEY)
    .optional()
    .openapi({
      param: {
        description:
          "Replaying the same key with the same request answers 200 with the same run (and hands it to its tracker again); the same key with another request is a 409.",
      },
    }),
});

// ---------- responses ----------

const count = z.number().int().min(0);
const isoTime = z.iso.datetime({ offset: false });

/** Each family once; a family added to ReasonFamily and not here fails the typecheck. */
const REASON_FAMILIES = { execution: "execution", lifecycle: "lifecycle", operator: "operator" } as const satisfies { [F in ReasonFamily]: F };

export const progressSchema = z
  .object({ total: count, processed: count, succeeded: count, failed: count })
  .strict()
  .openapi("Progress");

const runId = z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/);

export const runSchema = z
  .object({
    id: runId,
    workspaceId: z.string(),
    type: z.string(),
    status: z.enum(RUN_STATUSES),
    outcome: z.enum(OUTCOMES),
    displayState: z.enum(DISPLAY_STATES),
    displayLabel: z.string(),
    attempt: count,
    maxAttempts: z.number().int().min(1),
    createdAt: isoTime,
    startedAt: isoTime.nullable(),
    completedAt: isoTime.nullable(),
    lastHeartbeatAt: isoTime.nullable(),
    progress: progressSchema,
    reasonCode: z.string().nullable(),
    reasonFamily: z.enum(REASON_FAMILIES).nullable(),
    reconciledBy: z.enum(DETECTORS).nullable(),
    failureMessage: z.string().nullable(),
    retry: z
      .object({ afterAttempt: z.number().int().min(1), ended: z.string().nullable(), nextAttemptAt: isoTime.nullable() })
      .strict()
      .nullable()
      .openapi({ description: "While the run waits for another attempt: which attempt ended, how, and when the next is due; else null." }),
    // z.unknown(), not z.json(): the OpenAPI generator recurses into z.json()'s recursive type without end.
    output: z.unknown().openapi({ description: "What the handler returned with a success or partial success (any JSON value, at most 64 KiB); else null." }),
    retryOf: runId.nullable().openapi({ description: "The run this one retries as a new run; else null." }),
    retriedBy: z.array(runId).openapi({ description: "The runs that retry this one, newest first (at most 20)." }),
    cancelRequestedAt: isoTime.nullable().openapi({ description: "When an operator asked to cancel the run; else null." }),
    cancelRequestedBy: z.string().nullable().openapi({ description: "Who asked to cancel the run (an audit actor); else null." }),
  })
  .strict()
  .openapi("Run");
export type RunJson = z.infer<typeof runSchema>;

export const runEnvelopeSchema = z.object({ run: runSchema }).strict().openapi("RunEnvelope");

export const runPageSchema = z
  .object({ runs: z.array(runSchema), nextCursor: z.string().min(1).nullable() })
  .strict()
  .openapi("RunPage");

export const runEventSchema = z
  .object({ id: z.string(), action: z.string(), actor: z.string(), createdAt: isoTime, metadata: z.unknown().openapi({ description: "The event's JSON detail (secrets masked when written)." }) })
  .strict()
  .openapi("RunEvent");
export type RunEventJson = z.infer<typeof runEventSchema>;

export const runEventsSchema = z.object({ events: z.array(runEventSchema) }).strict().openapi("RunEvents");

const policySchema = z
  .object({
    timeoutMs: count,
    expectedRuntimeMs: count,
    heartbeatIntervalMs: count,
    heartbeatTimeoutMs: count,
    staleQueuedAfterMs: count,
    staleRunningAfterMs: count,
    maxAttempts: z.number().int().min(1),
    retryDelaySeconds: count,
    queue: z.string(),
  })
  .strict()
  .openapi("LifecyclePolicy");

const contractCheckSchema = z
  .object({
    rule: z.string(),
    type: z.string(),
    ok: z.boolean(),
    left: z.object({ label: z.string(), value: z.number() }).strict(),
    op: z.enum(["≤", "≥", "=", "<", ">"]),
    right: z.object({ label: z.string(), value: z.number() }).strict(),
    note: z.string().optional(),
  })
  .strict()
  .openapi("ContractCheck");

export const policiesSchema = z
  .object({
    types: z.array(z.object({ type: z.string(), description: z.string(), policy: policySchema }).strict()),
    settings: z.record(z.string(), z.number()),
    contract: z
      .object({ ok: z.boolean(), rules: z.record(z.string(), z.string()), checks: z.array(contractCheckSchema) })
      .strict(),
  })
  .strict()
  .openapi("Policies");

/** RFC 9457 problem details, the body of every error answer. */
export const problemSchema = z
  .looseObject({
    type: z.url(),
    title: z.string(),
    status: z.number().int().min(400).max(599),
    detail: z.string().optional(),
    instance: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string(), message: z.string() }).strict())
      .optional()
      .openapi({ description: "Field errors (400, 422): the path of each offending field and what is wrong with it." }),
    runId: z.string().optional().openapi({ description: "The run concerned (409 idempotency-key-reused, 503 not-scheduled)." }),
    rules: z.array(z.string()).optional().openapi({ description: "Violated timing rules (503 timing-contract-violated)." }),
    violations: z.array(z.string()).optional(),
    allow: z.array(z.string()).optional(),
  })
  .openapi("Problem");

// ---------- completion webhooks (contract section 8) ----------

/** A webhook endpoint id in a path: any string (an unknown or foreign id is a 404, not a 400). */
export const webhookEndpointIdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "whe_01JH00000000000000000000AB" }),
});

/**
 * `POST /webhook-endpoints`: src/webhooks/endpoints.ts's rule (the admin's too), documented. Rebuilt
 * from its shape because that schema was made before `.openapi()` was added to zod's types.
 */
export const createWebhookEndpointBody = z.object(endpointRequest.shape).strict().openapi("CreateWebhookEndpointRequest", {
  description:
    "url: where completed runs are POSTed, at most 2048 characters (in production https to a public host only; a refused URL is a 422 naming url). description: at most 200 characters. eventTypes: the event types to receive; omitted means all of them.",
});

const webhookEndpointId = z.string().regex(ENDPOINT_ID);

export const webhookEndpointSchema = z
  .object({
    id: webhookEndpointId,
    url: z.string(),
    description: z.string().nullable(),
    eventTypes: z
      .array(z.string())
      .nullable()
      .openapi({ description: `The event types it receives (${WEBHOOK_EVENT_TYPES.join(", ")}); null: every event type.` }),
    createdAt: isoTime,
  })
  .strict()
  .openapi("WebhookEndpoint");
export type WebhookEndpointJson = z.infer<typeof webhookEndpointSchema>;

export const webhookEndpointEnvelopeSchema = z.object({ endpoint: webhookEndpointSchema }).strict().openapi("WebhookEndpointEnvelope");

export const webhookEndpointListSchema = z.object({ endpoints: z.array(webhookEndpointSchema) }).strict().openapi("WebhookEndpointList");

export const createdWebhookEndpointSchema = z
  .object({
    endpoint: webhookEndpointSchema,
    secret: z
      .string()
      .regex(/^whsec_[A-Za-z0-9+/]{43}=$/)
      .openapi({
        description:
          "The signing secret (Standard Webhooks: `whsec_` and 32 bytes, base64). Shown in this answer only: no later answer carries it.",
      }),
  })
  .strict()
  .openapi("CreatedWebhookEndpoint");

const webhookTrySchema = z
  .object({
    attempt: z.number().int().min(1),
    at: isoTime,
    statusCode: z.number().int().nullable().openapi({ description: "The receiver's HTTP status; null when it did not answer." }),
    error: z.string().nullable().openapi({ description: "Why the try failed (the receiver's status, no answer in time, no connection); null when delivered." }),
    excerpt: z.string().nullable().openapi({ description: `The start of a failed answer's body (its first ${EXCERPT_CHARS} characters, sanitised); else null.` }),
  })
  .strict()
  .openapi("WebhookDeliveryTry");

export const webhookDeliverySchema = z
  .object({
    webhookId: z.string().regex(MESSAGE_ID).openapi({ description: "The Standard Webhooks `webhook-id`: the same on every try." }),
    runId,
    eventType: z.string(),
    status: z.enum(WEBHOOK_DELIVERY_STATUSES),
    attempts: count,
    nextAttemptAt: isoTime.nullable().openapi({ description: "When the next try is due; null once delivered or given up." }),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    tries: z.array(webhookTrySchema).openapi({ description: `The latest tries (at most ${MAX_LOGGED_TRIES}), oldest first.` }),
    createdAt: isoTime,
  })
  .strict()
  .openapi("WebhookDelivery");
export type WebhookDeliveryJson = z.infer<typeof webhookDeliverySchema>;

export const webhookDeliveriesSchema = z.object({ deliveries: z.array(webhookDeliverySchema) }).strict().openapi("WebhookDeliveries");
