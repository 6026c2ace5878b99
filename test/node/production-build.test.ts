/**
 * What `wrangler deploy` bundles (wrangler.toml's `main`, src/index.ts),
 * running under a real `wrangler dev`: it registers no demo type (only
 * production's http.export), and nothing breaks without it — the API's
 * policies and run creation, the admin's pages, the cron sweep. The local
 * build's extras (src/index.local.ts) are everywhere else in the tests; this
 * file is the one place the production entry itself serves.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BenchClient } from "../../bench/lib/client";
import { d1Execute } from "../../bench/lib/dev";
import { WRANGLER_TOML } from "../../scripts/lib/project";
import { LocalRuntime } from "./support/local-runtime";

const MIN = 60_000;

describe("the production build", () => {
  let rt: LocalRuntime;
  const api = (path: string, init: RequestInit = {}) =>
    fetch(`${rt.dev.base}/api/v1${path}`, {
      ...init,
      headers: { authorization: `Bearer ${rt.dev.token}`, "content-type": "application/json", ...init.headers },
      signal: AbortSignal.timeout(30_000),
    });

  beforeAll(async () => {
    rt = await LocalRuntime.start("production", "production");
  }, 5 * MIN);

  afterAll(async () => {
    await rt?.stop();
  }, MIN);

  it("refuses demo.work as an unknown type (422), naming production's types, and records nothing", async () => {
    const res = await api("/runs", { method: "POST", body: JSON.stringify({ type: "demo.work", input: { steps: 1, stepMs: 0 } }) });
    expect(res.status).toBe(422);
    const problem = (await res.json()) as { errors: Array<{ path: string; message: string }> };
    expect(problem.errors).toEqual([{ path: "type", message: "must be one of: http.export" }]);
    const rows = await d1Execute(rt.dev.persistTo, "SELECT COUNT(*) AS n FROM operation_runs", WRANGLER_TOML);
    expect(rows).toEqual([{ n: 0 }]);
  });

  it("answers the policies route with production's types only (http.export) and a contract that holds", async () => {
    const res = await api("/policies");
    expect(res.status).toBe(200);
    const body = (await res.json()) as { types: Array<{ type: string }>; contract: { ok: boolean } };
    expect(body.types.map((t) => t.type)).toEqual(["http.export"]);
    expect(body.contract.ok).toBe(true);
  });

  it("serves the admin's pages to a signed-in owner", async () => {
    const [owner] = await d1Execute(rt.dev.persistTo, "SELECT id FROM users WHERE email = 'owner@demo.test'", WRANGLER_TOML);
    const signIn = await fetch(`${rt.dev.base}/admin/sign-in`, {
      method: "POST",
      headers: { origin: rt.dev.base, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ userId: String(owner!.id) }),
      redirect: "manual",
    });
    expect(signIn.status).toBe(303);
    const cookie = signIn.headers.getSetCookie().map((c) => c.split(";")[0]).join("; ");
    for (const page of ["/admin/operations", "/admin/lifecycle", "/admin/audit-log"]) {
      const res = await fetch(`${rt.dev.base}${page}`, { headers: { cookie }, redirect: "manual" });
      const html = await res.text();
      expect(res.status, `${page}: ${html.slice(0, 300)}`).toBe(200);
      expect(html, page).not.toContain("demo.work");
    }
  });

  it("runs the cron sweep", async () => {
    await new BenchClient(rt.dev).scheduled();
  });
});
