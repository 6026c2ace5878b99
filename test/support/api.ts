/**
 * Helpers for the JSON API route tests: seed a workspace with an API token
 * row (only its SHA-256 is stored, as in production), call the Worker, and
 * read its answers through schemas rather than casts.
 *
 * Two ways in:
 * - `call()` goes through the runtime's own entry (`exports.default.fetch`):
 *   the real Worker, real bindings, a real queue whose consumer may process
 *   the runs it receives while the test is still running.
 * - `callWith()` calls the Worker's fetch handler in this isolate with some
 *   bindings replaced (a queue that records or fails), for tests that must
 *   know exactly what was sent and keep runs where they were put.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { expect } from "vitest";
import { z } from "zod";
import worker from "../../src/index";
import { DEMO, DEMO_INPUT } from "./demo";
import { makeWorkspace } from "./fixtures";

export const ORIGIN = "https://oplife.test";

export interface ApiClient {
  workspaceId: string;
  tokenId: string;
  /** The bearer credential (never stored; the row holds its hash). */
  token: string;
}

/** SHA-256 hex, computed here independently of src/api/auth.ts so a change there is caught. */
export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

function randomToken(): string {
  return `opl_${Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Insert an API token row for `workspaceId` (optionally already revoked). */
export async function seedToken(workspaceId: string, opts: { revoked?: boolean } = {}): Promise<{ tokenId: string; token: string }> {
  const token = randomToken();
  const tokenId = `tok_${crypto.randomUUID()}`;
  const now = Date.now();
  await env.DB.prepare(
    "INSERT INTO api_tokens (id, workspace_id, name, token_hash, created_at, last_used_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL, ?)",
  )
    .bind(tokenId, workspaceId, "test token", await sha256Hex(token), now, opts.revoked ? now : null)
    .run();
  return { tokenId, token };
}

/** A fresh workspace with one live API token. */
export async function apiClient(name = "api"): Promise<ApiClient> {
  const workspaceId = await makeWorkspace(name);
  return { workspaceId, ...(await seedToken(workspaceId)) };
}

export type CallInit = RequestInit & { token?: string };

export function request(path: string, init: CallInit = {}): Request {
  const { token, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  return new Request(new URL(path, ORIGIN), { ...rest, headers });
}

/** A request through the runtime's entry to the Worker, with the real bindings. */
export function call(path: string, init: CallInit = {}): Promise<Response> {
  return exports.default.fetch(request(path, init));
}

/** The Worker's fetch handler with some bindings replaced; waits for its waitUntil work. */
export async function callWith(overrides: Partial<Env>, path: string, init: CallInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await worker.fetch(request(path, init), { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

/** POST /api/v1/runs init with a JSON body (or a raw string when given one). */
export function postInit(token: string | undefined, body: unknown, headers: Record<string, string> = {}): CallInit {
  return {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
    ...(token !== undefined ? { token } : {}),
  };
}

export const DEMO_BODY = { type: DEMO, input: DEMO_INPUT } as const;

/** A queue that records what it is sent and delivers nothing (runs stay where the test put them). */
export function recordingQueue(): { queue: Queue; sent: unknown[] } {
  const sent: unknown[] = [];
  const queue: Queue = {
    async send(message) {
      sent.push(message);
      return { metadata: { metrics: { backlogCount: sent.length, backlogBytes: 0 } } };
    },
    async sendBatch(messages) {
      for (const m of messages) sent.push(m.body);
      return { metadata: { metrics: { backlogCount: sent.length, backlogBytes: 0 } } };
    },
    async metrics() {
      return { backlogCount: sent.length, backlogBytes: 0 };
    },
  };
  return { queue, sent };
}

/** A queue whose every send fails, as when the Queues service is unavailable. */
export function failingQueue(): { queue: Queue; attempts: () => number } {
  let attempts = 0;
  const fail = async (): Promise<never> => {
    attempts++;
    throw new Error("injected: queue unavailable");
  };
  const queue: Queue = { send: fail, sendBatch: fail, metrics: fail };
  return { queue, attempts: () => attempts };
}

// ---------- response shapes ----------

const iso = z.iso.datetime({ offset: false });
const count = z.number().int().min(0);

/** The contract's run JSON, exactly: `.strict()` fails on a missing or an unexpected field. */
export const runJsonSchema = z
  .object({
    id: z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/),
    workspaceId: z.string(),
    type: z.string(),
    status: z.enum(["queued", "running", "completed"]),
    outcome: z.enum(["pending", "succeeded", "partially_succeeded", "failed", "cancelled"]),
    displayState: z.enum([
      "queued",
      "retrying",
      "queued_overdue",
      "running",
      "running_stale",
      "cancelling",
      "succeeded",
      "partially_succeeded",
      "failed",
      "failed_reconciled",
      "cancelled",
    ]),
    displayLabel: z.string().min(1),
    attempt: count,
    maxAttempts: z.number().int().min(1),
    createdAt: iso,
    startedAt: iso.nullable(),
    completedAt: iso.nullable(),
    lastHeartbeatAt: iso.nullable(),
    progress: z.object({ total: count, processed: count, succeeded: count, failed: count }).strict(),
    reasonCode: z.string().nullable(),
    reasonFamily: z.enum(["execution", "lifecycle", "operator"]).nullable(),
    reconciledBy: z.enum(["tracker_alarm", "sweep", "dead_letter"]).nullable(),
    failureMessage: z.string().nullable(),
    retry: z.object({ afterAttempt: z.number().int().min(1), ended: z.string().nullable(), nextAttemptAt: iso }).strict().nullable(),
    output: z.json().nullable(),
    retryOf: z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/).nullable(),
    retriedBy: z.array(z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/)),
    cancelRequestedAt: iso.nullable(),
    cancelRequestedBy: z.string().nullable(),
  })
  .strict();
export type RunJson = z.infer<typeof runJsonSchema>;

export const runEnvelope = z.object({ run: runJsonSchema }).strict();
export const runPage = z.object({ runs: z.array(runJsonSchema), nextCursor: z.string().min(1).nullable() }).strict();

export const problemSchema = z.looseObject({
  type: z.url(),
  title: z.string().min(1),
  status: z.number().int().min(400).max(599),
  detail: z.string().min(1),
  instance: z.string().optional(),
  errors: z.array(z.object({ path: z.string(), message: z.string() }).strict()).optional(),
});
export type Problem = z.infer<typeof problemSchema>;

/** Parse a JSON response body with `schema`, failing the test with the body on a mismatch. */
export async function bodyOf<S extends z.ZodType>(res: Response, schema: S): Promise<z.infer<S>> {
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`response ${res.status} is not JSON: ${text.slice(0, 300)}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw new Error(`response ${res.status} does not match: ${z.prettifyError(parsed.error)}\n${text.slice(0, 500)}`);
  return parsed.data;
}

/** Assert an RFC 9457 problem with `status` (content type, and the body's own status) and return it. */
export async function expectProblem(res: Response, status: number): Promise<Problem> {
  const problem = await bodyOf(res, problemSchema);
  expect({ status: res.status, problemStatus: problem.status }).toEqual({ status, problemStatus: status });
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json\b/);
  return problem;
}

export async function runsInWorkspace(workspaceId: string): Promise<number> {
  const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM operation_runs WHERE workspace_id = ?").bind(workspaceId).first<{ n: number }>();
  return row?.n ?? -1;
}
