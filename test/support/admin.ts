/**
 * Helpers for the admin route tests (test/admin) on the Workers runtime with
 * real D1, no browser:
 *
 * - Bindings for each auth mode: `devEnv()` (DEV_SIGN_IN with a session
 *   secret), `accessEnv()` (Cloudflare Access team domain + AUD).
 * - `AdminClient`: calls an app in this isolate (`app.request`) with those
 *   bindings and keeps the cookies it is given, like a browser's jar.
 * - Access tokens signed here with keys generated here (jose), served to the
 *   admin through `createAdmin({ accessKeys })`: no network.
 * - Users, memberships and runs seeded with SQL or through RunService, each
 *   with fresh ids, so tests never share rows.
 * - `parseHtml()`: elements matching a selector, read with the runtime's own
 *   HTML parser (HTMLRewriter), attributes and text entity-decoded.
 */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { generateSignedCookie } from "hono/cookie";
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWK, type JWTVerifyGetKey } from "jose";
import { expect } from "vitest";
import type { AuthVars } from "../../src/admin/auth/mode";
import { createAdmin } from "../../src/admin/routes";
import { app } from "../../src/app";
import type { MembershipRole } from "../../src/db/schema";
import { DEFAULT_SETTINGS, type DisplayStateKind } from "../../src/lifecycle";
import type { RunService } from "../../src/runs";
import { DEMO, DEMO_INPUT, DEMO_POLICY } from "./demo";
import { runService } from "./fixtures";

export type AdminBindings = Env & AuthVars;

/** `app.request("/path")` resolves relative paths against this origin; csrf() compares Origin with it. */
export const ORIGIN = "http://localhost";
export const SESSION_SECRET = "test-session-secret-".padEnd(40, "x");
export const TEAM_DOMAIN = "https://team.cloudflareaccess.com";
export const AUD = "aud-tag";
export const PAGE_SIZE = 25;
/** Silent this long, a running demo.work run is stale (heartbeat timeout + flush interval). */
export const STALE_AFTER_MS = DEMO_POLICY.heartbeatTimeoutMs + DEFAULT_SETTINGS.heartbeatFlushIntervalMs;

/** Local dev sign-in, no Access settings (whatever the base env holds). */
export function devEnv(overrides: Partial<AdminBindings> = {}): AdminBindings {
  return { ...env, DEV_SIGN_IN: "1", SESSION_SECRET, ACCESS_TEAM_DOMAIN: undefined, ACCESS_AUD: undefined, ...overrides };
}

/** Cloudflare Access, no dev sign-in. */
export function accessEnv(overrides: Partial<AdminBindings> = {}): AdminBindings {
  return { ...env, DEV_SIGN_IN: undefined, SESSION_SECRET: undefined, ACCESS_TEAM_DOMAIN: TEAM_DOMAIN, ACCESS_AUD: AUD, ...overrides };
}

// ---------- calling the admin ----------

export type Fetcher = (path: string, init: RequestInit, bindings: AdminBindings) => Promise<Response>;

/** The Worker's own Hono app (the admin mounted at /admin by src/app.ts). */
export const appFetcher: Fetcher = async (path, init, bindings) => app.request(path, init, bindings);

/** A browser stand-in: sends its cookies, keeps what Set-Cookie gives it. */
export class AdminClient {
  readonly cookies = new Map<string, string>();

  constructor(
    public bindings: AdminBindings = devEnv(),
    private readonly fetcher: Fetcher = appFetcher,
  ) {}

  cookieHeader(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }

  async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0 && !headers.has("cookie")) headers.set("cookie", this.cookieHeader());
    const res = await this.fetcher(path, { ...init, headers }, this.bindings);
    for (const line of res.headers.getSetCookie()) {
      const [pair = "", ...attrs] = line.split(";");
      const eq = pair.indexOf("=");
      const name = pair.slice(0, eq).trim();
      const removed = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (removed) this.cookies.delete(name);
      else this.cookies.set(name, pair.slice(eq + 1));
    }
    return res;
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(path, { headers });
  }

  /** A form post, from the admin's own origin unless `headers` says otherwise. */
  post(path: string, form: Record<string, string>, headers: Record<string, string> = { origin: ORIGIN }): Promise<Response> {
    return this.request(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** GET that must answer 200; the body. */
  async html(path: string, headers: Record<string, string> = {}): Promise<string> {
    const res = await this.get(path, headers);
    const body = await res.text();
    expect(res.status, `GET ${path}: ${body.slice(0, 300)}`).toBe(200);
    return body;
  }
}

/** A new user with `role` in `workspaceId`, signed in. */
export async function clientFor(workspaceId: string, role: MembershipRole = "owner"): Promise<AdminClient> {
  return signIn((await seedUser([[workspaceId, role]], role)).id);
}

/** Sign in through the dev sign-in form; the client holds the session cookie. */
export async function signIn(userId: string, bindings: AdminBindings = devEnv()): Promise<AdminClient> {
  const client = new AdminClient(bindings);
  const res = await client.post("/admin/sign-in", { userId });
  expect(res.status, "sign-in").toBe(303);
  expect(res.headers.get("location")).toBe("/admin/operations");
  expect(client.cookies.has("oplife_session")).toBe(true);
  return client;
}

/** A session cookie minted with the secret, as the server would (for expiry and forgery cases). */
export async function mintSessionCookie(value: string, secret = SESSION_SECRET): Promise<string> {
  const line = await generateSignedCookie("oplife_session", value, secret, { path: "/" });
  return line.split(";")[0]!;
}

// ---------- Cloudflare Access ----------

export interface AccessKeys {
  kid: string;
  privateKey: CryptoKey;
  jwks: { keys: JWK[] };
}

/** An RS256 key pair; the public half as the team's JWKS would publish it. */
export async function accessKeyPair(kid = `kid-${crypto.randomUUID().slice(0, 8)}`): Promise<AccessKeys> {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const jwk = await exportJWK(publicKey);
  return { kid, privateKey, jwks: { keys: [{ ...jwk, kid, alg: "RS256", use: "sig" }] } };
}

export interface TokenClaims {
  email?: string | undefined;
  iss?: string;
  aud?: string;
  /** Seconds since the epoch. */
  exp?: number;
  nbf?: number;
}

/** A Cf-Access-Jwt-Assertion signed with `key` (RS256) under `kid`; defaults are a valid token. */
export async function accessToken(key: CryptoKey, kid: string, claims: TokenClaims = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: Record<string, unknown> = { type: "app", identity_nonce: "n" };
  if (claims.email !== undefined) payload.email = claims.email;
  let jwt = new SignJWT(payload)
    .setProtectedHeader({ alg: "RS256", kid })
    .setIssuer(claims.iss ?? TEAM_DOMAIN)
    .setAudience(claims.aud ?? AUD)
    .setSubject(crypto.randomUUID())
    .setIssuedAt(now - 10)
    .setExpirationTime(claims.exp ?? now + 300);
  if (claims.nbf !== undefined) jwt = jwt.setNotBefore(claims.nbf);
  return jwt.sign(key);
}

/** The admin alone, mounted at /admin, with the Access keys served locally; records the team domains asked for. */
export function accessFetcher(jwks: { keys: JWK[] }): { fetcher: Fetcher; askedFor: string[] } {
  const askedFor: string[] = [];
  const accessKeys = (teamDomain: string): JWTVerifyGetKey => {
    askedFor.push(teamDomain);
    return createLocalJWKSet(jwks);
  };
  const host = new Hono<{ Bindings: AdminBindings }>().route("/admin", createAdmin({ accessKeys }));
  return { fetcher: async (path, init, bindings) => host.request(path, init, bindings), askedFor };
}

// ---------- seeding ----------

let seq = 0;
const uniq = (prefix: string) => `${prefix}_${++seq}_${crypto.randomUUID().slice(0, 8)}`;

export interface TestUser {
  id: string;
  email: string;
  name: string;
}

/** A user with the given memberships (unique id, email and name). */
export async function seedUser(memberships: Array<[workspaceId: string, role: MembershipRole]>, label = "user"): Promise<TestUser> {
  const id = uniq(`usr_${label}`);
  const user = { id, email: `${id}@admin.test`, name: `Name ${id}` };
  const now = Date.now();
  await env.DB.batch([
    env.DB.prepare("INSERT INTO users (id, email, name, created_at) VALUES (?, ?, ?, ?)").bind(user.id, user.email, user.name, now),
    ...memberships.map(([ws, role]) =>
      env.DB.prepare("INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?, ?, ?, ?)").bind(ws, user.id, role, now),
    ),
  ]);
  return user;
}

export async function setRow(runId: string, sets: string, ...values: unknown[]): Promise<void> {
  const res = await env.DB.prepare(`UPDATE operation_runs SET ${sets} WHERE id = ?`).bind(...values, runId).run();
  expect(res.meta.changes, `update ${runId}`).toBe(1);
}

function ok<T extends { ok: boolean }>(answer: T, what: string): T {
  if (!answer.ok) throw new Error(`${what} refused: ${JSON.stringify(answer)}`);
  return answer;
}

export async function createQueued(svc: RunService, workspaceId: string, type = DEMO): Promise<string> {
  const c = await svc.create({ workspaceId, type, input: type === DEMO ? DEMO_INPUT : {}, initiator: "user:admin-test" });
  if (!c.ok || !c.created) throw new Error(`create did not create a run: ${JSON.stringify(c)}`);
  return c.run.id;
}

export async function createRunning(svc: RunService, workspaceId: string, type = DEMO): Promise<string> {
  const id = await createQueued(svc, workspaceId, type);
  ok(await svc.claim(id, 1), "claim");
  return id;
}

/** A run that failed by its own error (execution family), the error kept in diagnostics. */
export async function createExecutionFailure(svc: RunService, workspaceId: string, error = "connection refused by db-7"): Promise<string> {
  const id = await createRunning(svc, workspaceId);
  ok(await svc.failAttempt(id, 1, { reason: "handler.error", retryable: false, error: new Error(error) }), "failAttempt");
  return id;
}

/** A run whose attempt 1 failed retryably with `error`: back in the queue, waiting for attempt 2 (Retrying). */
export async function createRetrying(svc: RunService, workspaceId: string, error = "upstream 503 from inventory API"): Promise<string> {
  const id = await createRunning(svc, workspaceId);
  ok(await svc.failAttempt(id, 1, { reason: "handler.error", retryable: true, error: new Error(error) }), "failAttempt");
  return id;
}

/**
 * A run whose attempt 1 failed retryably with `error`, then was dead-lettered:
 * failed_reconciled by dead_letter, the original error still in diagnostics.
 */
export async function createDeadLettered(svc: RunService, workspaceId: string, error = "upstream 503 from inventory API"): Promise<string> {
  const id = await createRunning(svc, workspaceId);
  ok(await svc.failAttempt(id, 1, { reason: "handler.error", retryable: true, error: new Error(error) }), "failAttempt");
  ok(await svc.deadLetter(id, { deliveryAttempts: 3 }), "deadLetter");
  return id;
}

/** One run in each display state of contract section 6, at about `Date.now()`. */
export async function seedEveryDisplayState(workspaceId: string, svc: RunService = runService()): Promise<Record<DisplayStateKind, string>> {
  const now = Date.now();
  const cancel = { actor: "user:canceller@test" } as const;
  const [queued, retrying, queuedOverdue, running, runningStale, succeeded, partial, failed, reconciled, cancelling, cancelled] = await Promise.all([
    createQueued(svc, workspaceId),
    createRetrying(svc, workspaceId),
    createQueued(svc, workspaceId).then(async (id) => (await setRow(id, "deadline_at = ?", now - 60_000), id)),
    createRunning(svc, workspaceId),
    createRunning(svc, workspaceId).then(async (id) => (await setRow(id, "last_heartbeat_at = ?", now - 10 * 60_000), id)),
    createRunning(svc, workspaceId).then(async (id) => (ok(await svc.complete(id, 1, { outcome: "succeeded" }), "complete"), id)),
    createRunning(svc, workspaceId).then(async (id) => {
      ok(await svc.complete(id, 1, { outcome: "partially_succeeded", message: "1 of 3 items failed" }), "complete");
      return id;
    }),
    createExecutionFailure(svc, workspaceId),
    createQueued(svc, workspaceId).then(async (id) => {
      const observed = { status: "queued" as const, attempt: 0 };
      ok(await svc.reconcile(id, { detector: "sweep", reason: "lifecycle.stale_queued", observed, evidence: { test: true } }), "reconcile");
      return id;
    }),
    createRunning(svc, workspaceId).then(async (id) => (ok(await svc.cancel(id, cancel), "cancel"), id)),
    createQueued(svc, workspaceId).then(async (id) => (ok(await svc.cancel(id, cancel), "cancel"), id)),
  ]);
  return {
    queued,
    retrying,
    queued_overdue: queuedOverdue,
    running,
    running_stale: runningStale,
    succeeded,
    partially_succeeded: partial,
    failed,
    failed_reconciled: reconciled,
    cancelling,
    cancelled,
  };
}

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** The 10-character ULID time prefix of `ms`. */
export function timePrefix(ms: number): string {
  let t = Math.floor(ms);
  let out = "";
  for (let i = 0; i < 10; i++) {
    out = CROCKFORD[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return out;
}

function randomCrockford(n: number): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(n)), (b) => CROCKFORD[b % 32]).join("");
}

export interface BulkRuns {
  count: number;
  /** Creation time of the first run; run x (1-based) is created at `createdAt + x` ms. */
  createdAt: number;
  /** Every `failedEvery`-th run failed (handler.failed); the rest succeeded. 0: none failed. */
  failedEvery?: number;
  /** Completion time of every run (all are terminal). */
  completedAt?: number;
}

/**
 * Insert `count` terminal runs in ONE statement (a recursive CTE), with ids in
 * the real format — "run_" + 26 Crockford characters: the creation time's
 * prefix, 4 random characters, a 12-digit sequence — so they sort in creation
 * order. Returns the ids, oldest first.
 */
export async function insertTerminalRuns(workspaceId: string, b: BulkRuns): Promise<string[]> {
  const prefix = `run_${timePrefix(b.createdAt)}${randomCrockford(4)}`;
  const every = b.failedEvery ?? 0;
  const failed = every > 0 ? `x % ${every} = 0` : "0";
  const sql = `
    WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ?1)
    INSERT INTO operation_runs (id, workspace_id, type, status, outcome, attempt, max_attempts, input, progress,
      created_at, started_at, completed_at, last_heartbeat_at, deadline_at, reason_code, failure_message,
      diagnostics, reconciled_by, idempotency_key, initiator, updated_at)
    SELECT printf('%s%012d', ?2, x), ?3, 'demo.work', 'completed',
      CASE WHEN ${failed} THEN 'failed' ELSE 'succeeded' END, 1, 3,
      '{"steps":1,"stepMs":0}', '{"total":1,"processed":1,"succeeded":1,"failed":0}',
      ?4 + x, ?4 + x + 10, ?5, ?4 + x + 10, NULL,
      CASE WHEN ${failed} THEN 'handler.failed' ELSE NULL END,
      CASE WHEN ${failed} THEN 'The operation ran to the end and reported that it failed.' ELSE NULL END,
      '{"attempts":[]}', NULL, NULL, 'user:seed', ?5
    FROM n`;
  const completedAt = b.completedAt ?? b.createdAt + b.count + 1_000;
  const res = await env.DB.prepare(sql).bind(b.count, prefix, workspaceId, b.createdAt, completedAt).run();
  expect(res.meta.changes).toBe(b.count);
  return Array.from({ length: b.count }, (_, i) => `${prefix}${String(i + 1).padStart(12, "0")}`);
}

/** An audit event inserted as stored (metadata verbatim, not redacted): what the views must cope with. */
export async function insertRawEvent(e: {
  workspaceId: string;
  subjectId: string;
  action?: string;
  actor?: string;
  metadata: unknown;
  createdAt?: number;
}): Promise<string> {
  const at = e.createdAt ?? Date.now();
  const id = `evt_${timePrefix(at)}${randomCrockford(16)}`;
  await env.DB.prepare(
    "INSERT INTO audit_events (id, workspace_id, actor, action, subject_type, subject_id, metadata, created_at) VALUES (?, ?, ?, ?, 'run', ?, ?, ?)",
  )
    .bind(id, e.workspaceId, e.actor ?? "system:sweep", e.action ?? "run.reconciled", e.subjectId, JSON.stringify(e.metadata), at)
    .run();
  return id;
}

export interface StoredEvent {
  id: string;
  actor: string;
  action: string;
  subjectId: string;
  metadata: string;
}

/** A workspace's events as stored, newest first (what the audit log must show). */
export async function eventsNewestFirst(workspaceId: string): Promise<StoredEvent[]> {
  const res = await env.DB.prepare(
    "SELECT id, actor, action, subject_id AS subjectId, metadata FROM audit_events WHERE workspace_id = ? ORDER BY id DESC",
  )
    .bind(workspaceId)
    .all<StoredEvent>();
  return res.results;
}

// ---------- reading HTML ----------

export interface El {
  tag: string;
  attrs: Record<string, string>;
  /** Text content (descendants included), entities decoded. */
  text: string;
}

const VOID = new Set(["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"]);

export function decodeEntities(s: string): string {
  return s
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&#39;|&#x27;/g, "'")
    .replace(/&amp;/g, "&");
}

/** Every element matching `selector`, in document order. */
export async function parseHtml(html: string, selector: string): Promise<El[]> {
  const found: El[] = [];
  const open: El[] = [];
  await new HTMLRewriter()
    .on(selector, {
      element(e) {
        const el: El = { tag: e.tagName, attrs: {}, text: "" };
        for (const [k, v] of e.attributes) if (k !== undefined) el.attrs[k] = decodeEntities(v ?? "");
        found.push(el);
        if (!VOID.has(e.tagName)) {
          open.push(el);
          e.onEndTag(() => {
            open.splice(open.indexOf(el), 1);
          });
        }
      },
      text(t) {
        const text = decodeEntities(t.text);
        for (const el of open) el.text += text;
      },
    })
    .transform(new Response(html))
    .text();
  return found;
}

/** The single element matching `selector`; fails unless there is exactly one. */
export async function one(html: string, selector: string): Promise<El> {
  const els = await parseHtml(html, selector);
  expect(els, `exactly one ${selector}`).toHaveLength(1);
  return els[0]!;
}

export const squash = (s: string) => s.replace(/\s+/g, " ").trim();
export const classes = (el: El) => (el.attrs.class ?? "").split(/\s+/).filter(Boolean);

/**
 * A poll URL without the poller's own state (src/admin/live.ts: change token,
 * live ids, back-off, D1 bookmark): its path and the filters it keeps, as the
 * page's own URL spells them.
 */
export function pollTarget(url: string | undefined): string {
  const u = new URL(url ?? "", ORIGIN);
  const kept = new URLSearchParams();
  for (const [k, v] of u.searchParams) if (["display", "type", "range", "run", "cursor"].includes(k)) kept.append(k, v);
  const q = kept.toString();
  return q ? `${u.pathname}?${q}` : u.pathname;
}
