/**
 * Reading a JSON request body, once for every route that takes one (runs,
 * run actions, webhook endpoints): the same answers everywhere.
 */
import type { Context } from "hono";
import { log } from "../log";
import type { ApiEnv } from "./auth";
import { ApiProblem, problems } from "./problem";

/** A JSON media type: `application/json` or any `application/*+json` (RFC 6839 section 3.1). */
const JSON_MEDIA_TYPE = /^application\/(.+\+)?json\b/i;

/** Throws 415 unless the request's Content-Type is JSON. No Content-Type at all is read as JSON. */
export function requireJsonContentType(c: Context<ApiEnv>): void {
  const contentType = c.req.header("content-type");
  if (contentType && !JSON_MEDIA_TYPE.test(contentType)) throw problems.unsupportedMediaType();
}

/** A body that breaks while it is read is the client's failure: a 400 and a warning, not an internal error. */
export function unreadableBody(c: Context<ApiEnv>, error: unknown): ApiProblem {
  log.warn("api.body_unreadable", { method: c.req.method, path: new URL(c.req.url).pathname, workspaceId: c.get("principal")?.workspaceId, error });
  return problems.unreadableBody();
}

/**
 * The request body parsed as JSON. With `optional`, an empty (or blank) body
 * is `{}` whatever its Content-Type. Throws ApiProblem: 400 for a body that
 * breaks while read (logged) or malformed JSON, 415 for a Content-Type that is
 * not JSON. The size limit is the route's bodyLimit, before this.
 */
export async function readJsonBody(c: Context<ApiEnv>, options: { optional?: boolean } = {}): Promise<unknown> {
  // A required body is refused by its media type before it is read; an optional one may be empty with any.
  if (!options.optional) requireJsonContentType(c);
  let text: string;
  try {
    text = await c.req.text();
  } catch (error) {
    throw unreadableBody(c, error);
  }
  if (options.optional) {
    if (text.trim() === "") return {};
    requireJsonContentType(c);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw problems.malformedJson();
  }
}
