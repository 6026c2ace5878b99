/**
 * The admin's sign-in hardening: dev sign-in answers only on a local host,
 * sign-out ends the session on the server (a replayed cookie is refused), and
 * a Cloudflare Access key-set outage is logged and answered 503, while a bad
 * token stays a quiet 401.
 */
import { env } from "cloudflare:workers";
import { Hono } from "hono";
import { errors, type JWTVerifyGetKey } from "jose";
import { describe, expect, it } from "vitest";
import { isLocalHost } from "../../src/admin/auth/local-only";
import { createAdmin } from "../../src/admin/routes";
import { makeWorkspace } from "../support/fixtures";
import { accessEnv, accessKeyPair, accessToken, AdminClient, appFetcher, devEnv, seedUser, signIn, type AdminBindings, type Fetcher } from "../support/admin";
import { capturingConsole } from "../support/logs";

describe("dev sign-in is local only", () => {
  it.each(["localhost", "app.localhost", "127.0.0.1", "127.8.9.10", "[::1]"])("%s is local", (host) => {
    expect(isLocalHost(host)).toBe(true);
  });
  it.each(["oplife.example.com", "oplife.workers.dev", "localhost.example.com", "127.0.0.1.nip.io", "10.0.0.1", "[::2]"])("%s is not", (host) => {
    expect(isLocalHost(host)).toBe(false);
  });

  it("refuses every admin request on a public host, the sign-in page and its user list included", async () => {
    const ws = await makeWorkspace("public");
    const user = await seedUser([[ws, "owner"]], "public");
    const origin = "https://oplife.example.com";
    const client = new AdminClient(devEnv(), (path, init, bindings) => appFetcher(new URL(path, origin).toString(), init, bindings));

    const page = await client.get("/admin/sign-in");
    expect(page.status).toBe(403);
    const body = await page.text();
    expect(body).toContain("Dev sign-in is local only");
    expect(body).not.toContain(user.email);

    const post = await client.post("/admin/sign-in", { userId: user.id }, { origin });
    expect(post.status).toBe(403);
    expect(post.headers.getSetCookie()).toEqual([]);
    expect((await client.get("/admin/operations")).status).toBe(403);

    // The same request on localhost signs in: the refusal above is about the host.
    expect((await signIn(user.id)).cookies.has("oplife_session")).toBe(true);
  });
});

describe("dev sign-out", () => {
  it("ends the session for good: the cookie replayed after sign-out is refused", async () => {
    const ws = await makeWorkspace("signout");
    const user = await seedUser([[ws, "owner"]], "signout");
    const client = await signIn(user.id);
    const cookie = `oplife_session=${client.cookies.get("oplife_session")}`;
    expect((await client.get("/admin/operations")).status).toBe(200);

    expect((await client.post("/admin/sign-out", {})).status).toBe(303);
    // An attacker (or a stale tab) still holding the cookie sends it again.
    const replay = await new AdminClient().get("/admin/operations", { cookie });
    expect(replay.status).toBe(302);
    expect(replay.headers.get("location")).toBe("/admin/sign-in");
    const row = await env.DB.prepare("SELECT ended_at FROM admin_sessions WHERE user_id = ?").bind(user.id).first<{ ended_at: number | null }>();
    expect(row?.ended_at).toEqual(expect.any(Number));

    // Another session of the same user is not affected.
    const other = await signIn(user.id);
    expect((await other.get("/admin/operations")).status).toBe(200);
  });
});

describe("Cloudflare Access key set outage", () => {
  function hostWith(keys: JWTVerifyGetKey): Fetcher {
    const host = new Hono<{ Bindings: AdminBindings }>().route("/admin", createAdmin({ accessKeys: () => keys }));
    return async (path, init, bindings) => host.request(path, init, bindings);
  }

  it.each([
    ["the fetch fails", () => new TypeError("fetch failed")],
    ["the fetch times out", () => new errors.JWKSTimeout()],
    ["the answer is not a key set", () => new errors.JWKSInvalid("JSON Web Key Set malformed")],
  ])("when %s: 503 and one error log line naming the team", async (_what, failure) => {
    const ws = await makeWorkspace("jwks");
    const user = await seedUser([[ws, "owner"]], "jwks");
    const { kid, privateKey } = await accessKeyPair();
    const token = await accessToken(privateKey, kid, { email: user.email });
    const client = new AdminClient(accessEnv(), hostWith(async () => Promise.reject(failure())));
    const { value: res, json } = await capturingConsole("error", () => client.get("/admin/operations", { "cf-access-jwt-assertion": token }));
    expect(res.status).toBe(503);
    expect(await res.text()).toContain("could not check your Cloudflare Access sign-in");
    expect(json).toEqual([expect.objectContaining({ level: "error", event: "admin.access_keys_unavailable", teamDomain: "https://team.cloudflareaccess.com" })]);
  });

  it("a token the keys reject is a 401 with no log line", async () => {
    const { kid, privateKey } = await accessKeyPair();
    const token = await accessToken(privateKey, kid, { email: "x@y.test" });
    const client = new AdminClient(accessEnv(), hostWith(async () => Promise.reject(new errors.JWKSNoMatchingKey())));
    const { value: res, raw } = await capturingConsole("error", () => client.get("/admin/operations", { "cf-access-jwt-assertion": token }));
    expect(res.status).toBe(401);
    expect(raw).toEqual([]);
  });
});
