/**
 * `http.export`: reads every page of one collection of an upstream HTTP API
 * and returns what it exported — the shape of most real operation types (a
 * sync, an export, a backfill): a loop of `fetch` calls that may be throttled,
 * may fail for a while, or may be refused for good.
 *
 * The upstream is the Worker's `EXPORT_API_BASE_URL` var, never the input:
 * a tenant names a collection, not a host, so a run cannot make the Worker
 * fetch an arbitrary URL. Each page is
 *
 *   GET {EXPORT_API_BASE_URL}/{collection}?limit={pageSize}[&cursor={cursor}]
 *   → 200 {"items": [...], "nextCursor": string | null, "total"?: number}
 *
 * How each answer is treated (RFC 9110 semantics):
 * - 429 and 503: retryable; with `Retry-After` (seconds or an HTTP date, RFC
 *   9110 section 10.2.3) the next attempt waits exactly that long.
 * - any other 4xx: the run fails at once (outcome `failed`, not retried: the
 *   request itself is wrong and asking again changes nothing), with the status
 *   and the page in its message.
 * - other 5xx and network errors: retryable after the policy's delay.
 * - a 200 whose body is not that shape: fails at once too (a contract mismatch).
 * Reading is side-effect free, so a retried attempt starts again at page 1.
 */
import { z } from "zod";
import type { Progress } from "../lifecycle";
import { defineOperation, NonRetryableError, RetryableError } from "./types";

export const httpExportInput = z
  .object({
    /** The upstream collection, a path under the base URL: `orders`, `crm/contacts`. */
    collection: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]*(\/[a-z0-9][a-z0-9_-]*)*$/, "must be lowercase path segments (a-z, 0-9, _ and -) separated by /")
      .max(200),
    /** Items per page, sent as `limit`. */
    pageSize: z.number().int().min(1).max(1_000).default(100),
    /** Stop with a failure rather than page forever through an upstream that never ends. */
    maxPages: z.number().int().min(1).max(10_000).default(500),
  })
  .strict();

export type HttpExportInput = z.infer<typeof httpExportInput>;

/** What a run returns as its output. */
export interface HttpExportOutput {
  collection: string;
  pages: number;
  items: number;
}

const page = z.object({
  items: z.array(z.unknown()),
  nextCursor: z.string().min(1).nullable(),
  total: z.number().int().min(0).optional(),
});

/**
 * `Retry-After` in ms from `now`: delta-seconds or an HTTP date (RFC 9110
 * section 10.2.3); `undefined` when absent or unreadable (the policy's delay
 * then applies). A date in the past is 0.
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  // An HTTP date names its day and month ("Wed, 21 Oct 2026 07:28:00 GMT"); a bare
  // number with a sign is neither form, though Date.parse would read it as a year.
  if (!/[a-z]/i.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** The base URL from the Worker's vars, checked: a misconfigured deployment fails clearly, not with a fetch error. */
function baseUrl(env: Env): URL {
  const raw: string = env.EXPORT_API_BASE_URL;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new NonRetryableError("EXPORT_API_BASE_URL is not a URL: set it in wrangler.toml [vars].");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    throw new NonRetryableError("EXPORT_API_BASE_URL must be an http(s) URL.");
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

export const httpExport = defineOperation({
  type: "http.export",
  description: "Reads every page of an upstream collection (EXPORT_API_BASE_URL) and returns the counts.",
  input: httpExportInput,
  // How each number was chosen: docs/operations.md ("Choosing the policy").
  policy: {
    // T5 couples the types of a batched queue: demo.work's 120 s staleQueuedAfterMs must
    // cover a batch held behind this timeout (2 + 5 + 10 + 90 = 107 s). A longer export
    // belongs on a queue of its own.
    timeoutMs: 90_000,
    expectedRuntimeMs: 30_000,
    heartbeatIntervalMs: 5_000,
    heartbeatTimeoutMs: 30_000,
    staleQueuedAfterMs: 120_000,
    staleRunningAfterMs: 90_000,
    // Throttling is expected: a few tries, each waiting what the upstream asked.
    maxAttempts: 5,
    retryDelaySeconds: 5,
    queue: "operations",
  },
  async handler(input, ctx) {
    const base = baseUrl(ctx.env);
    const progress: Progress = { total: 0, processed: 0, succeeded: 0, failed: 0 };
    let cursor: string | null = null;
    let pages = 0;
    do {
      if (pages >= input.maxPages) {
        return {
          outcome: "failed",
          message: `Stopped after ${pages} pages (maxPages) with more to read; ${progress.processed} items were read.`,
          progress,
        };
      }
      const url = new URL(input.collection, base);
      url.searchParams.set("limit", String(input.pageSize));
      if (cursor !== null) url.searchParams.set("cursor", cursor);
      const where = `GET /${input.collection} (page ${pages + 1})`;
      const answer = await fetchPage(url, where, ctx.signal);
      if (answer.kind === "refused") return { outcome: "failed", message: answer.message, progress };
      const body = page.safeParse(answer.body);
      if (!body.success) {
        const issue = body.error.issues[0];
        const field = issue?.path.length ? ` (${issue.path.join(".")})` : "";
        return { outcome: "failed", message: `The upstream's answer to ${where} is not a page of {items, nextCursor}${field}.`, progress };
      }
      pages++;
      progress.processed += body.data.items.length;
      progress.succeeded += body.data.items.length;
      progress.total = Math.max(body.data.total ?? 0, progress.processed);
      ctx.reportProgress({ ...progress });
      cursor = body.data.nextCursor;
    } while (cursor !== null);
    const output: HttpExportOutput = { collection: input.collection, pages, items: progress.processed };
    return { outcome: "succeeded", progress, output };
  },
});

/**
 * One page's JSON body, or why the upstream refused it for good (an
 * operator-safe sentence: status and page, never the upstream's own text).
 * Throws `RetryableError` when another attempt may succeed.
 */
type PageAnswer = { kind: "page"; body: unknown } | { kind: "refused"; message: string };

async function fetchPage(url: URL, where: string, signal: AbortSignal): Promise<PageAnswer> {
  let response: Response;
  try {
    response = await fetch(url, { headers: { accept: "application/json" }, signal });
  } catch (error) {
    // The attempt's own timeout or fencing: let the runner report it as such.
    if (signal.aborted) throw signal.reason;
    throw new RetryableError(`Could not reach the upstream for ${where}.`, { cause: error });
  }
  if (response.ok) {
    try {
      return { kind: "page", body: await response.json() };
    } catch {
      return { kind: "refused", message: `The upstream's answer to ${where} is not JSON.` };
    }
  }
  // The body is not read into any message: raw upstream text is not operator-safe (contract section 1).
  await response.body?.cancel();
  const status = `${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
  if (response.status === 429 || response.status === 503) {
    const after = retryAfterMs(response.headers.get("retry-after"), Date.now());
    const when = after === undefined ? "" : ` (Retry-After: ${Math.ceil(after / 1000)} s)`;
    throw new RetryableError(`The upstream answered ${status} to ${where}${when}.`, after === undefined ? {} : { retryAfterMs: after });
  }
  if (response.status >= 400 && response.status < 500) {
    return { kind: "refused", message: `The upstream answered ${status} to ${where}; not retried, since a client error repeats.` };
  }
  throw new RetryableError(`The upstream answered ${status} to ${where}.`);
}
