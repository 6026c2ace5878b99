/**
 * The webhooks queue message: which delivery to try, and how many tries it
 * had when this message was sent. A message whose count no longer matches
 * the row is stale (a duplicate, or a re-drive that lost to a live message)
 * and is dropped, so duplicates never make two tries at once. Versioned.
 */
import { z } from "zod";

export const MESSAGE_ID = /^msg_[0-9A-HJKMNP-TV-Z]{26}$/;
export const ENDPOINT_ID = /^whe_[0-9A-HJKMNP-TV-Z]{26}$/;

export const webhookMessage = z
  .object({
    v: z.literal(1),
    messageId: z.string().regex(MESSAGE_ID, "not a webhook message id"),
    endpointId: z.string().regex(ENDPOINT_ID, "not a webhook endpoint id"),
    /** Tries made before this one: the row's `attempts` this message expects. */
    tries: z.number().int().min(0).max(1000),
  })
  .strict();

export type WebhookMessage = z.infer<typeof webhookMessage>;
