/**
 * The admin's browser-facing defences: security headers on every response
 * (pages, fragments, redirects and every error), no inline script or style
 * for the CSP to forbid, stored payloads rendered as text, no internals in
 * errors, and malformed query strings answered without a 500.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { makeWorkspace, runService } from "../support/fixtures";
import { d1FailingPrepare, d1WithFailingBatch } from "../support/d1";
import {
  accessEnv,
  accessFetcher,
  accessKeyPair,
  accessToken,
  AdminClient,
  createDeadLettered,
  createExecutionFailure,
  createQueued,
  devEnv,
  eventsNewestFirst,
  insertRawEvent,
  one,
  parseHtml,
  SESSION_SECRET,
  seedUser,
  setRow,
  signIn,
  squash,
  pollTarget,
} from "../support/admin";

const XSS_SCRIPT = "<script>alert(1)</script>";
const XSS_IMG = "<img src=x onerror=alert(1)>";
const PAYLOAD = `${XSS_SCRIPT} ${XSS_IMG}`;
/** A type name is free text as far as the rows go (a removed type keeps its runs). */
const POISONED_TYPE = `x${XSS_SCRIPT}`;

afterEach(() => {
  vi.restoreAllMocks();
});

function csp(res: Response): Map<string, string[]> {
  const header = res.headers.get("content-security-policy") ?? "";
  return new Map(
    header
      .split(";")
      .map((d) => d.trim().split(/\s+/))
      .filter((parts) => parts[0])
      .map(([name, ...values]) => [name!, values]),
  );
}

function expectSecurityHeaders(res: Response, what: string): void {
  const policy = csp(res);
  expect(policy.get("script-src"), `${what}: script-src`).toEqual(["'self'"]);
  expect(policy.get("default-src"), `${what}: default-src`).toEqual(["'self'"]);
  expect(policy.get("frame-ancestors"), `${what}: frame-ancestors`).toEqual(["'none'"]);
  expect(policy.get("object-src"), `${what}: object-src`).toEqual(["'none'"]);
  const raw = res.headers.get("content-security-policy") ?? "";
  expect(raw, what).not.toContain("unsafe-inline");
  expect(raw, what).not.toContain("unsafe-eval");
  expect(res.headers.get("x-frame-options"), what).toBe("DENY");
  expect(res.headers.get("x-content-type-options"), what).toBe("nosniff");
  expect(res.headers.get("cache-control"), what).toBe("no-store");
}

/** A workspace with one run of each failure family and an owner signed in. */
async function signedInWorkspace() {
  const svc = runService();
  const ws = await makeWorkspace("security");
  const [failed, reconciled] = await Promise.all([createExecutionFailure(svc, ws), createDeadLettered(svc, ws)]);
  const [event] = await eventsNewestFirst(ws);
  const owner = await seedUser([[ws, "owner"]], "owner");
  const viewer = await seedUser([[ws, "viewer"]], "viewer");
  return { ws, failed, reconciled, eventId: event!.id, owner: await signIn(owner.id), viewer: await signIn(viewer.id) };
}

describe("security headers on every admin response", () => {
  it("pages, fragments, redirects and errors of every kind (dev mode)", async () => {
    const s = await signedInWorkspace();
    const anon = new AdminClient();
    const responses: Array<[string, Promise<Response>, number]> = [
      ["operations", s.owner.get("/admin/operations"), 200],
      ["operations live fragment", s.owner.get("/admin/operations/live"), 200],
      ["operations more fragment", s.owner.get(`/admin/operations/more?cursor=${s.reconciled}`), 200],
      ["run page", s.owner.get(`/admin/operations/${s.failed}`), 200],
      ["run live fragment", s.owner.get(`/admin/operations/${s.failed}/live`), 200],
      ["audit log", s.owner.get("/admin/audit-log"), 200],
      ["audit event fragment", s.owner.get(`/admin/audit-log/events/${s.eventId}`), 200],
      ["lifecycle", s.owner.get("/admin/lifecycle"), 200],
      ["sign-in page", anon.get("/admin/sign-in"), 200],
      ["index redirect", s.owner.get("/admin"), 302],
      ["signed-out redirect", anon.get("/admin/operations"), 302],
      ["signed-out htmx 401", anon.get("/admin/operations/live", { "hx-request": "true" }), 401],
      ["unknown user sign-in 401", anon.post("/admin/sign-in", { userId: "nobody" }), 401],
      ["viewer 403", s.viewer.get("/admin/audit-log"), 403],
      ["CSRF 403", s.owner.post("/admin/workspace", { workspaceId: s.ws }, { origin: "https://evil.example" }), 403],
      ["missing run 404", s.owner.get("/admin/operations/run_00000000000000000000000000"), 404],
      ["unknown admin path 404", s.owner.get("/admin/no-such-page"), 404],
      ["misconfigured 503", new AdminClient(devEnv({ SESSION_SECRET: "short" })).get("/admin/operations"), 503],
    ];
    for (const [what, pending, status] of responses) {
      const res = await pending;
      expect(res.status, what).toBe(status);
      expectSecurityHeaders(res, what);
    }
  });

  it("Access mode: 200, 401 and 403, and the absent sign-in page", async () => {
    const keys = await accessKeyPair();
    const { fetcher } = accessFetcher(keys.jwks);
    const ws = await makeWorkspace("security-access");
    const user = await seedUser([[ws, "viewer"]]);
    const client = new AdminClient(accessEnv(), fetcher);
    const token = (email: string) => accessToken(keys.privateKey, keys.kid, { email });
    const responses: Array<[string, Response, number]> = [
      ["200", await client.get("/admin/operations", { "cf-access-jwt-assertion": await token(user.email) }), 200],
      ["401", await client.get("/admin/operations"), 401],
      ["403 unknown email", await client.get("/admin/operations", { "cf-access-jwt-assertion": await token("nobody@admin.test") }), 403],
      ["404 sign-in", await client.get("/admin/sign-in"), 404],
    ];
    for (const [what, res, status] of responses) {
      expect(res.status, what).toBe(status);
      expectSecurityHeaders(res, what);
    }
  });

  it("the 500 page carries them too", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const s = await signedInWorkspace();
    s.owner.bindings = devEnv({ DB: d1WithFailingBatch("D1_ERROR: boom") });
    const res = await s.owner.get("/admin/operations");
    expect(res.status).toBe(500);
    expectSecurityHeaders(res, "500");
  });
});

describe("no inline script or style for the CSP to block", () => {
  it("every page's scripts come from this origin's files; no inline handlers, styles or javascript: URLs", async () => {
    const s = await signedInWorkspace();
    const pages = [
      "/admin/operations",
      `/admin/operations/${s.reconciled}`,
      "/admin/audit-log",
      `/admin/audit-log?event=${s.eventId}`,
      "/admin/lifecycle",
    ];
    const bodies: Array<[string, string]> = [];
    for (const path of pages) bodies.push([path, await s.owner.html(path)]);
    bodies.push(["/admin/sign-in", await new AdminClient().html("/admin/sign-in")]);
    bodies.push(["404 page", await (await s.owner.get("/admin/operations/run_00000000000000000000000000")).text()]);

    for (const [path, html] of bodies) {
      const scripts = await parseHtml(html, "script");
      expect(scripts.length, path).toBeGreaterThan(0);
      for (const script of scripts) {
        expect(script.attrs.src, path).toMatch(/^\/[^/]/);
        expect(script.text.trim(), `${path}: inline script body`).toBe("");
      }
      const everything = await parseHtml(html, "*");
      for (const el of everything) {
        for (const [name, value] of Object.entries(el.attrs)) {
          expect(name.startsWith("on"), `${path}: <${el.tag} ${name}>`).toBe(false);
          expect(name, `${path}: <${el.tag}> style attribute`).not.toBe("style");
          expect(value.trim().toLowerCase().startsWith("javascript:"), `${path}: <${el.tag} ${name}=${value}>`).toBe(false);
        }
      }
      expect(await parseHtml(html, "style"), path).toHaveLength(0);
      // htmx must not eval or run scripts it swaps in (it would need 'unsafe-eval' / inline scripts).
      const config = JSON.parse((await one(html, 'meta[name="htmx-config"]')).attrs.content!) as Record<string, unknown>;
      expect(config, path).toMatchObject({ allowEval: false, allowScriptTags: false, includeIndicatorStyles: false, selfRequestsOnly: true });
    }
  });
});

describe("stored payloads render as text", () => {
  async function poisoned() {
    const svc = runService();
    const ws = await makeWorkspace("xss");
    const [run, live] = await Promise.all([createDeadLettered(svc, ws), createQueued(svc, ws, POISONED_TYPE)]);
    // Written as stored rows, past the service's sanitising: the views alone must hold.
    await setRow(run, "failure_message = ?, diagnostics = json_set(diagnostics, '$.lastError.message', ?)", PAYLOAD, PAYLOAD);
    const eventId = await insertRawEvent({
      workspaceId: ws,
      subjectId: run,
      actor: `user:${XSS_IMG}`,
      metadata: { error: PAYLOAD, nested: { [XSS_IMG]: [XSS_SCRIPT] } },
    });
    return { ws, run, live, eventId, client: await signIn((await seedUser([[ws, "owner"]])).id) };
  }

  /** The raw markup is absent; the only <script>s are the layout's; no <img> exists. */
  async function expectInert(html: string, where: string, shown: string[]): Promise<void> {
    expect(html, where).not.toContain("<script>alert");
    expect(html, where).not.toContain("<img src=x");
    expect(html.toLowerCase(), where).not.toMatch(/<img[\s>]/);
    expect((await parseHtml(html, "img")).length, where).toBe(0);
    expect((await parseHtml(html, "script")).every((s) => s.attrs.src !== undefined), where).toBe(true);
    for (const text of shown) expect(html, where).toContain(text);
  }

  const ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;";
  const ESCAPED_IMG = "&lt;img src=x onerror=alert(1)&gt;";

  it("on the run page: failure message, original last error and type", async () => {
    const p = await poisoned();
    const html = await p.client.html(`/admin/operations/${p.run}`);
    await expectInert(html, "run page", [ESCAPED_SCRIPT, ESCAPED_IMG]);
    expect((await one(html, "[data-failure-message]")).text).toBe(PAYLOAD);
    expect((await one(html, "[data-last-error]")).text).toBe(PAYLOAD);
    const typed = await p.client.html(`/admin/operations/${p.live}`);
    await expectInert(typed, "run page of the poisoned type", [`x${ESCAPED_SCRIPT}`]);
    expect((await one(typed, ".page-head h1 code")).text).toBe(POISONED_TYPE);
  });

  it("on the operations page (type) and in filters reflected from the URL", async () => {
    const p = await poisoned();
    const query = new URLSearchParams({ type: POISONED_TYPE }).toString();
    const html = await p.client.html(`/admin/operations?${query}`);
    await expectInert(html, "operations", [`x${ESCAPED_SCRIPT}`]);
    const row = await one(html, "tr[data-run-id]");
    expect(row.attrs["data-run-id"]).toBe(p.live);
    expect((await one(html, "tr[data-run-id] code.run-type")).text).toBe(POISONED_TYPE);
    // The reflected filter stays inside its attribute, URL-encoded.
    expect(pollTarget((await one(html, "#poller")).attrs["hx-get"])).toBe(`/admin/operations/live?${query}`);
    const live = await p.client.html(`/admin/operations/live?${query}`);
    await expectInert(live, "live fragment", [`x${ESCAPED_SCRIPT}`]);
  });

  it("on the operations page: a failed run's message under its badge", async () => {
    const p = await poisoned();
    const html = await p.client.html("/admin/operations?display=failed_reconciled");
    await expectInert(html, "operations (failed)", [ESCAPED_SCRIPT, ESCAPED_IMG]);
    const message = await one(html, `tr[data-run-id="${p.run}"] [data-failure-message]`);
    expect(message.text).toBe(PAYLOAD.length > 90 ? `${PAYLOAD.slice(0, 89)}…` : PAYLOAD);
    expect(message.attrs.title).toBe(PAYLOAD);
  });

  it("in the audit slide-over (fragment and deep link) and the audit list", async () => {
    const p = await poisoned();
    const fragment = await p.client.html(`/admin/audit-log/events/${p.eventId}`);
    await expectInert(fragment, "event fragment", [ESCAPED_SCRIPT, ESCAPED_IMG]);
    const metadata = JSON.parse((await one(fragment, "pre[data-metadata]")).text) as unknown;
    expect(metadata).toEqual({ error: PAYLOAD, nested: { [XSS_IMG]: [XSS_SCRIPT] } });
    expect(squash((await parseHtml(fragment, "dd code"))[0]!.text)).toBe(`user:${XSS_IMG}`);

    const deepLink = await p.client.html(`/admin/audit-log?event=${p.eventId}`);
    await expectInert(deepLink, "audit deep link", [ESCAPED_SCRIPT, ESCAPED_IMG]);
    const list = await p.client.html("/admin/audit-log");
    await expectInert(list, "audit list", [ESCAPED_IMG]);
  });

  it("a query string trying to break out of an attribute stays in it", async () => {
    const p = await poisoned();
    const breakout = `"><script>alert(1)</script>`;
    const html = await p.client.html(`/admin/audit-log?action=${encodeURIComponent(breakout)}`);
    await expectInert(html, "audit action filter", []);
    const ops = await p.client.html(`/admin/operations?type=${encodeURIComponent(breakout)}`);
    await expectInert(ops, "operations type filter", []);
    expect((await one(ops, "#poller")).attrs["data-polling"]).toBe("off");
  });
});

describe("errors say nothing of internals", () => {
  it("a D1 failure renders a generic 500 page: no message, stack or secret; the error is logged", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const s = await signedInWorkspace();
    const secretish = `D1_ERROR: no such table: secret_table_x at statement 3\n    at Object.batch (worker.js:12:34)`;
    s.owner.bindings = devEnv({ DB: d1WithFailingBatch(secretish) });
    const res = await s.owner.get("/admin/operations");
    const body = await res.text();
    expect(res.status).toBe(500);
    expect(squash((await one(body, ".error-page h1")).text)).toBe("Something went wrong");
    for (const leak of ["D1_ERROR", "secret_table_x", "worker.js", "at Object", SESSION_SECRET, s.ws]) {
      expect(body, leak).not.toContain(leak);
    }
    // Logged as one structured line, for the operator, not the page.
    const lines = errors.mock.calls.map((c) => String(c[0]));
    const logged = lines.filter((l) => l.includes('"admin.unhandled_error"'));
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: "error", path: "/admin/operations", method: "GET" });
    expect(logged[0]).not.toContain("worker.js:12:34");

    // The next request with the real binding is fine: one broken request, not a broken admin.
    s.owner.bindings = devEnv();
    expect((await s.owner.get("/admin/operations")).status).toBe(200);
  });

  it("a failure in the run page's reads renders the same generic 500", async () => {
    vi.spyOn(console, "error").mockImplementation(() => undefined);
    const s = await signedInWorkspace();
    // Auth lookups go to users/memberships; only the run read (by id and workspace) fails.
    const db = d1FailingPrepare((sql) => sql.includes("FROM operation_runs"), () => new Error(`SQLITE_BUSY while reading ${s.failed}`), devEnv().DB);
    s.owner.bindings = devEnv({ DB: db });
    const res = await s.owner.get(`/admin/operations/${s.failed}`);
    const body = await res.text();
    expect(res.status).toBe(500);
    expect(body).not.toContain("SQLITE_BUSY");
    expect(body).toContain("Something went wrong");
  });
});

describe("malformed query strings never 500", () => {
  const cases: Array<[path: string, status: number]> = [
    ["/admin/operations?cursor=not-a-cursor", 200],
    ["/admin/operations?cursor=run_lowercase00000000000000000", 200],
    ["/admin/operations?cursor=run_00000000000000000000000000", 200],
    ["/admin/operations?display=bogus", 200],
    ["/admin/operations?display=", 200],
    ["/admin/operations?range=99y&type=", 200],
    [`/admin/operations?type=${"t".repeat(5_000)}`, 200],
    ["/admin/operations?display=%E0%A4%A&cursor=%ff", 200],
    ["/admin/operations?display=failed&display=running", 200],
    ["/admin/operations/live?display=nope&cursor=%00", 200],
    ["/admin/operations/more?cursor=' OR 1=1 --", 200],
    ["/admin/operations/not-a-run-id", 404],
    ["/admin/operations/run_00000000000000000000000000/live", 404],
    ["/admin/audit-log?cursor=evt_bad&event=&actor=robot&run=run_x", 200],
    ["/admin/audit-log?event=evt_00000000000000000000000000", 404],
    ["/admin/audit-log?event=not-an-event", 200],
    ["/admin/audit-log/events/not-an-event", 404],
    ["/admin/audit-log/events/%E0%A4%A", 404],
  ];
  const named = cases.map(([path, status]) => [path.length > 80 ? `${path.slice(0, 60)}… (${path.length} chars)` : path, path, status] as const);
  it.each(named)("%s → %i", async (_name, path, status) => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const s = await signedInWorkspace();
    const res = await s.owner.get(path);
    expect(res.status).toBe(status);
    expect(errors).not.toHaveBeenCalled();
  });

  it("an ignored filter is not reflected as if applied", async () => {
    const s = await signedInWorkspace();
    const html = await s.owner.html("/admin/operations?display=bogus&range=99y");
    // Both runs are shown (the bogus filter is dropped), and no option claims to be selected.
    expect(await parseHtml(html, "tr[data-run-id]")).toHaveLength(2);
    const selected = (await parseHtml(html, "select option")).filter((o) => "selected" in o.attrs && o.attrs.value !== s.ws);
    expect(selected).toEqual([]);
  });
});
