import { monotonicFactory } from "ulidx";

const ulid = monotonicFactory();

/** The Standard Webhooks `webhook-id` of one event: the same on every try and for every endpoint. */
export const newWebhookMessageId = (now?: number): string => `msg_${ulid(now)}`;
export const newWebhookEndpointId = (now?: number): string => `whe_${ulid(now)}`;

/** A signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes, base64 (256 bits). */
export function newWebhookSecret(): string {
  return `whsec_${btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))))}`;
}
