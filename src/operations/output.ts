/**
 * A handler's output (contract section 1, `output`): the JSON it returns with a
 * `succeeded` or `partially_succeeded` result, stored on the run and shown by
 * the API and the admin, as Cloudflare Workflows' `status().output` or
 * BullMQ's `returnvalue`.
 */

/**
 * The largest output a run keeps, in bytes of its UTF-8 JSON text: 64 KiB,
 * the same bound as an API request body. It keeps the tracker's stored report
 * (one Durable Object storage value, at most 2 MiB per value on SQLite-backed
 * objects: https://developers.cloudflare.com/durable-objects/platform/limits/)
 * and the D1 row (at most 2 MB: https://developers.cloudflare.com/d1/platform/limits/)
 * far from their limits. Larger results belong in R2 or KV, with a key or URL
 * as the output.
 */
export const MAX_OUTPUT_BYTES = 64 * 1024;

export type OutputCheck =
  /** `json`: the output as JSON text; `undefined` when the handler returned none. */
  | { ok: true; json: string | undefined }
  /** `message`: an operator-safe sentence saying what is wrong (the run fails with `handler.error`, not retryable). */
  | { ok: false; message: string };

/** Bytes of `text` in UTF-8. */
export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}

/** The size rule alone, for JSON text that is already serialised (the tracker re-checks what it stores). */
export function checkOutputJson(json: string): OutputCheck {
  const bytes = utf8Bytes(json);
  return bytes > MAX_OUTPUT_BYTES
    ? { ok: false, message: `The handler's output is ${bytes} bytes of JSON, over the limit of ${MAX_OUTPUT_BYTES} bytes; store large results elsewhere (R2, KV) and return a reference.` }
    : { ok: true, json };
}

/**
 * Serialise a handler's output as it will be stored: `JSON.stringify`, so a
 * `Date` becomes a string and `NaN` becomes `null` as in any JSON API. A value
 * JSON cannot hold (a BigInt, a cycle, a function or symbol at the top) or one
 * over MAX_OUTPUT_BYTES is refused with a sentence, never thrown.
 */
export function serializeOutput(output: unknown): OutputCheck {
  if (output === undefined) return { ok: true, json: undefined };
  let json: string | undefined;
  try {
    json = JSON.stringify(output);
  } catch (error) {
    // TypeError from JSON.stringify: "Do not know how to serialize a BigInt", "cyclic object value", or a
    // throwing toJSON(). Its text names the problem, never the output's contents.
    const why = error instanceof Error ? error.message : "it threw while serialising";
    return { ok: false, message: `The handler's output is not serialisable as JSON: ${why}.` };
  }
  if (json === undefined) return { ok: false, message: `The handler's output is not serialisable as JSON: a ${typeof output} has no JSON form.` };
  return checkOutputJson(json);
}
