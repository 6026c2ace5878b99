/**
 * Who may see what in the admin: the dev sign-in session, Cloudflare Access
 * tokens (verified against keys generated here), the refusal to run on a
 * misconfigured mode, the role × page matrix, tenant isolation (another
 * workspace's run or event is a 404 indistinguishable from a missing one),
 * and the workspace switcher with its CSRF guard.
 */
import { describe, expect, it } from "vitest";
import type { MembershipRole } from "../../src/db/schema";
import { makeWorkspace, runService, stopClock } from "../support/fixtures";
import {
  accessEnv,
  accessFetcher,
  accessKeyPair,
  accessToken,
  AdminClient,
  createExecutionFailure,
  devEnv,
  eventsNewestFirst,
  one,
  ORIGIN,
  parseHtml,
  seedUser,
  signIn,
  squash,
  TEAM_DOMAIN,
} from "../support/admin";
import { mintSession, sessionIdFor } from "../support/sessions";

/** A syntactically valid run id that no test ever creates. */
const NO_SUCH_RUN = "run_00000000000000000000000000";

async function runIdsShown(html: string): Promise<string[]> {
  return (await parseHtml(html, "tr[data-run-id]")).map((r) => r.attrs["data-run-id"]!);
}

/** A workspace with one failed run and its audit events, plus a foreign workspace with the same. */
async function twoTenants() {
  const svc = runService();
  const [ws, foreignWs] = await Promise.all([makeWorkspace("mine"), makeWorkspace("foreign")]);
  const [run, foreignRun] = await Promise.all([
    createExecutionFailure(svc, ws, "disk quota exceeded on shard-3"),
    createExecutionFailure(svc, foreignWs, "FOREIGN-SECRET-DETAIL quota on shard-9"),
  ]);
  const [event] = await eventsNewestFirst(ws);
  const [foreignEvent] = await eventsNewestFirst(foreignWs);
  return { ws, foreignWs, run, foreignRun, eventId: event!.id, foreignEventId: foreignEvent!.id };
}

describe("dev sign-in: signed out", () => {
  it.each(["/admin/operations", `/admin/operations/${NO_SUCH_RUN}`, "/admin/audit-log", "/admin/lifecycle", "/admin"])(
    "GET %s redirects to the sign-in page (302)",
    async (path) => {
      const res = await new AdminClient().get(path);
      expect(res.status).toBe(302);
      expect(res.headers.get("location")).toBe("/admin/sign-in");
    },
  );

  it("an htmx request gets 401 with HX-Redirect to the sign-in page (htmx cannot follow a 302 into a full page)", async () => {
    const res = await new AdminClient().get("/admin/operations/live", { "hx-request": "true" });
    expect(res.status).toBe(401);
    expect(res.headers.get("hx-redirect")).toBe("/admin/sign-in");
    expect(res.headers.get("location")).toBeNull();
    expect(await res.text()).toBe("");
  });

  it("the sign-in page lists users to pick, and signing in sets a signed HttpOnly SameSite=Lax cookie", async () => {
    const ws = await makeWorkspace("signin");
    const user = await seedUser([[ws, "operator"]]);
    const client = new AdminClient();
    const page = await client.html("/admin/sign-in");
    const buttons = await parseHtml(page, "button[data-email]");
    expect(buttons.map((b) => b.attrs["data-email"])).toContain(user.email);

    const res = await client.post("/admin/sign-in", { userId: user.id });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/operations");
    const cookie = res.headers.getSetCookie().find((c) => c.startsWith("oplife_session="));
    expect(cookie).toBeDefined();
    expect(cookie).toMatch(/;\s*HttpOnly/i);
    expect(cookie).toMatch(/;\s*SameSite=Lax/i);
    expect(cookie).toMatch(/;\s*Path=\//i);
    // The value names a server-side session (not the user) and carries a signature.
    expect(decodeURIComponent(client.cookies.get("oplife_session")!)).toMatch(/^ses_[0-9a-f]{32}\./);

    const home = await client.html("/admin/operations");
    expect((await one(home, ".who__user")).attrs.title).toBe(user.email);
    expect(squash((await one(home, ".who__user .role")).text)).toBe("operator");
  });

  it("an unknown user id cannot sign in: 401 and no session cookie", async () => {
    const client = new AdminClient();
    const res = await client.post("/admin/sign-in", { userId: "usr_does_not_exist" });
    expect(res.status).toBe(401);
    expect(client.cookies.has("oplife_session")).toBe(false);
  });

  it("a tampered session cookie is no session: another user's id under the first one's signature, garbage, another secret", async () => {
    const ws = await makeWorkspace("tamper");
    const [alice, mallory] = await Promise.all([seedUser([[ws, "owner"]], "alice"), seedUser([[ws, "viewer"]], "mallory")]);
    const signedIn = await signIn(mallory.id);
    const genuine = decodeURIComponent(signedIn.cookies.get("oplife_session")!);
    // Keep mallory's signature, claim a live session of alice's.
    const aliceSession = sessionIdFor();
    await mintSession(alice.id, { id: aliceSession });
    const swapped = genuine.replace(/^ses_[0-9a-f]{32}/, aliceSession);
    expect(swapped).not.toBe(genuine);
    const otherSecret = await mintSession(alice.id, { secret: "another-secret-of-forty-characters-long!" });
    const cookies = [
      `oplife_session=${encodeURIComponent(swapped)}`,
      `oplife_session=${aliceSession}`,
      `oplife_session=${encodeURIComponent(`${alice.id}|${Date.now() + 3_600_000}`)}`,
      "oplife_session=garbage",
      otherSecret,
    ];
    for (const cookie of cookies) {
      const res = await new AdminClient().get("/admin/operations", { cookie });
      expect(res.status, cookie).toBe(302);
      expect(res.headers.get("location")).toBe("/admin/sign-in");
    }
    // The genuine cookie still works: the refusals above are about the tampering.
    expect((await signedIn.get("/admin/operations")).status).toBe(200);
  });

  it("an expired session (correctly signed) is signed out", async () => {
    const ws = await makeWorkspace("expired");
    const user = await seedUser([[ws, "owner"]]);
    const expired = await mintSession(user.id, { expiresAt: Date.now() - 1_000 });
    const valid = await mintSession(user.id);
    expect((await new AdminClient().get("/admin/operations", { cookie: expired })).status).toBe(302);
    expect((await new AdminClient().get("/admin/operations", { cookie: valid })).status).toBe(200);
  });

  it("sign-out clears the cookie and the next page is signed out", async () => {
    const ws = await makeWorkspace("signout");
    const client = await signIn((await seedUser([[ws, "owner"]])).id);
    const res = await client.post("/admin/sign-out", {});
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/sign-in");
    expect(client.cookies.has("oplife_session")).toBe(false);
    expect((await client.get("/admin/operations")).status).toBe(302);
  });

  it("a user with no membership is refused (403), not shown an empty admin", async () => {
    const loner = await seedUser([]);
    const res = await (await signIn(loner.id)).get("/admin/operations");
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("not a member of any workspace");
  });
});

describe("role × page matrix", () => {
  const expected: Record<MembershipRole, { audit: number; diagnostics: boolean }> = {
    owner: { audit: 200, diagnostics: true },
    operator: { audit: 200, diagnostics: true },
    viewer: { audit: 403, diagnostics: false },
  };

  it.each(Object.keys(expected) as MembershipRole[])("%s", async (role) => {
    const t = await twoTenants();
    const client = await signIn((await seedUser([[t.ws, role]], role)).id);
    const want = expected[role];

    const ops = await client.html("/admin/operations");
    expect(await runIdsShown(ops)).toEqual([t.run]);

    const runPage = await client.html(`/admin/operations/${t.run}`);
    expect(await parseHtml(runPage, "details.diagnostics")).toHaveLength(want.diagnostics ? 1 : 0);
    expect(runPage.includes("Original last error")).toBe(want.diagnostics);
    // Everyone sees the operator-safe explanation.
    expect(await parseHtml(runPage, "[data-reason-family=execution]")).toHaveLength(1);

    const audit = await client.get("/admin/audit-log");
    expect(audit.status).toBe(want.audit);
    const event = await client.get(`/admin/audit-log/events/${t.eventId}`);
    expect(event.status).toBe(want.audit);
    const deepLink = await client.get(`/admin/audit-log?event=${t.eventId}`);
    expect(deepLink.status).toBe(want.audit);
    if (want.audit === 403) {
      const body = await event.text();
      expect(body).toContain("cannot read the audit log");
      expect(body).not.toContain(t.eventId);
    }

    expect((await client.get("/admin/lifecycle")).status).toBe(200);
  });
});

describe("tenant isolation: another workspace's things do not exist", () => {
  it("a foreign run is a 404 page identical to a run that never existed, disclosing nothing of it", async () => {
    const t = await twoTenants();
    const client = await signIn((await seedUser([[t.ws, "owner"]])).id);
    const foreign = await client.get(`/admin/operations/${t.foreignRun}`);
    const missing = await client.get(`/admin/operations/${NO_SUCH_RUN}`);
    expect(foreign.status).toBe(404);
    expect(missing.status).toBe(404);
    const [foreignBody, missingBody] = await Promise.all([foreign.text(), missing.text()]);
    expect(foreignBody).toBe(missingBody);
    expect(foreignBody).not.toContain("FOREIGN-SECRET-DETAIL");
    expect(foreignBody).not.toContain(t.foreignWs);
    expect((await one(foreignBody, ".error-page")).attrs["data-status"]).toBe("404");

    const live = await client.get(`/admin/operations/${t.foreignRun}/live`);
    expect(live.status).toBe(404);
    expect(await live.text()).not.toContain("FOREIGN-SECRET-DETAIL");
  });

  it("a foreign run never appears in the listing, even through a cursor taken from it", async () => {
    const t = await twoTenants();
    const client = await signIn((await seedUser([[t.ws, "owner"]])).id);
    expect(await runIdsShown(await client.html("/admin/operations"))).toEqual([t.run]);
    // A cursor just above the foreign run's id: only runs of the viewer's own workspace may come back.
    const cursor = `${t.foreignRun.slice(0, -1)}Z`;
    const more = await client.html(`/admin/operations/more?cursor=${cursor}`);
    expect(more).not.toContain(t.foreignRun);
  });

  it("a foreign audit event is a 404 (fragment and deep link), for owner and operator alike", async () => {
    const t = await twoTenants();
    for (const role of ["owner", "operator"] as const) {
      const client = await signIn((await seedUser([[t.ws, role]], role)).id);
      const fragment = await client.get(`/admin/audit-log/events/${t.foreignEventId}`);
      expect(fragment.status, role).toBe(404);
      expect(await fragment.text()).not.toContain("FOREIGN-SECRET-DETAIL");
      expect((await client.get(`/admin/audit-log?event=${t.foreignEventId}`)).status, role).toBe(404);
      // Their own event opens.
      expect((await client.get(`/admin/audit-log/events/${t.eventId}`)).status, role).toBe(200);
    }
  });

  it("a viewer asking for a foreign event learns only that the audit log is not theirs (403), as for their own", async () => {
    const t = await twoTenants();
    const client = await signIn((await seedUser([[t.ws, "viewer"]])).id);
    const foreign = await client.get(`/admin/audit-log/events/${t.foreignEventId}`);
    const own = await client.get(`/admin/audit-log/events/${t.eventId}`);
    expect([foreign.status, own.status]).toEqual([403, 403]);
    expect(await foreign.text()).toBe(await own.text());
  });
});

describe("Cloudflare Access", () => {
  async function accessSetup() {
    const keys = await accessKeyPair();
    const { fetcher, askedFor } = accessFetcher(keys.jwks);
    const ws = await makeWorkspace("access");
    const user = await seedUser([[ws, "operator"]], "access");
    const get = (headers: Record<string, string>, path = "/admin/operations") => new AdminClient(accessEnv(), fetcher).get(path, headers);
    const bearing = (token: string, path?: string) => get({ "cf-access-jwt-assertion": token }, path);
    return { keys, fetcher, askedFor, ws, user, get, bearing };
  }

  it("a valid token for a known email is that user (200), verified with the configured team's keys", async () => {
    const s = await accessSetup();
    const res = await s.bearing(await accessToken(s.keys.privateKey, s.keys.kid, { email: s.user.email }));
    const body = await res.text();
    expect(res.status).toBe(200);
    expect((await one(body, ".who__user")).attrs.title).toBe(s.user.email);
    expect(s.askedFor).toContain(TEAM_DOMAIN);
    // Access mode has no sign-out button (the session is Access's).
    expect(await parseHtml(body, 'form[action="/admin/sign-out"]')).toHaveLength(0);
  });

  it("the token's email is matched case-insensitively", async () => {
    const s = await accessSetup();
    const res = await s.bearing(await accessToken(s.keys.privateKey, s.keys.kid, { email: s.user.email.toUpperCase() }));
    expect(res.status).toBe(200);
  });

  it("every invalid token is 401: forged, expired, not yet valid, wrong audience, wrong issuer, no email, alg none, garbage, missing", async () => {
    const s = await accessSetup();
    const email = s.user.email;
    const now = Math.floor(Date.now() / 1000);
    const impostor = await accessKeyPair(s.keys.kid); // same kid, another key
    const stranger = await accessKeyPair(); // a kid the team never published
    const b64 = (o: object) => btoa(JSON.stringify(o)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const unsigned = `${b64({ alg: "none", typ: "JWT" })}.${b64({ email, iss: TEAM_DOMAIN, aud: "aud-tag", exp: now + 300 })}.`;
    const cases: Record<string, Record<string, string>> = {
      "forged (same kid, other key)": { "cf-access-jwt-assertion": await accessToken(impostor.privateKey, s.keys.kid, { email }) },
      "forged (unknown kid)": { "cf-access-jwt-assertion": await accessToken(stranger.privateKey, stranger.kid, { email }) },
      expired: { "cf-access-jwt-assertion": await accessToken(s.keys.privateKey, s.keys.kid, { email, exp: now - 60 }) },
      "not yet valid": { "cf-access-jwt-assertion": await accessToken(s.keys.privateKey, s.keys.kid, { email, nbf: now + 600 }) },
      "wrong audience": { "cf-access-jwt-assertion": await accessToken(s.keys.privateKey, s.keys.kid, { email, aud: "other-app" }) },
      "wrong issuer": {
        "cf-access-jwt-assertion": await accessToken(s.keys.privateKey, s.keys.kid, { email, iss: "https://evil.cloudflareaccess.com" }),
      },
      "no email claim": { "cf-access-jwt-assertion": await accessToken(s.keys.privateKey, s.keys.kid, {}) },
      "alg none": { "cf-access-jwt-assertion": unsigned },
      garbage: { "cf-access-jwt-assertion": "not.a.jwt" },
      missing: {},
    };
    for (const [name, headers] of Object.entries(cases)) {
      const res = await s.get(headers);
      expect(res.status, name).toBe(401);
      // Not the dev flow: no redirect and no pointer to a sign-in page that does not exist here.
      expect(res.headers.get("location"), name).toBeNull();
      expect(await res.text(), name).not.toContain("/admin/sign-in");
    }
    // The same request with the genuine token passes, so each refusal is about its defect.
    expect((await s.bearing(await accessToken(s.keys.privateKey, s.keys.kid, { email }))).status).toBe(200);
  });

  it("an htmx request without a token is 401 without HX-Redirect (Access, not the dev page, signs people in)", async () => {
    const s = await accessSetup();
    const res = await s.get({ "hx-request": "true" }, "/admin/operations/live");
    expect(res.status).toBe(401);
    expect(res.headers.get("hx-redirect")).toBeNull();
  });

  it("a valid token for an email no user has is 403 (identity verified, no account)", async () => {
    const s = await accessSetup();
    const res = await s.bearing(await accessToken(s.keys.privateKey, s.keys.kid, { email: `nobody-${crypto.randomUUID()}@admin.test` }));
    expect(res.status).toBe(403);
    expect(await res.text()).toContain("no user of this system has that email");
  });

  it("the dev sign-in does not exist (404 for GET and POST, no cookie), and a dev session cookie is worthless", async () => {
    const s = await accessSetup();
    const client = new AdminClient(accessEnv(), s.fetcher);
    expect((await client.get("/admin/sign-in")).status).toBe(404);
    const post = await client.post("/admin/sign-in", { userId: s.user.id });
    expect(post.status).toBe(404);
    expect(post.headers.getSetCookie()).toEqual([]);
    const devCookie = await mintSession(s.user.id);
    expect((await s.get({ cookie: devCookie })).status).toBe(401);
  });
});

describe("mode refusal: a misconfigured admin serves nothing", () => {
  it("DEV_SIGN_IN together with Access settings: 503 naming the problem, on pages and on the sign-in page; no session can be made", async () => {
    const ws = await makeWorkspace("both");
    const user = await seedUser([[ws, "owner"]]);
    const validCookie = await mintSession(user.id);
    for (const both of [
      devEnv({ ACCESS_TEAM_DOMAIN: TEAM_DOMAIN, ACCESS_AUD: "aud-tag" }),
      devEnv({ ACCESS_TEAM_DOMAIN: TEAM_DOMAIN }),
      devEnv({ ACCESS_AUD: "aud-tag" }),
    ]) {
      const client = new AdminClient(both);
      for (const path of ["/admin/operations", "/admin/sign-in"]) {
        const res = await client.get(path, { cookie: validCookie });
        const body = await res.text();
        expect(res.status, path).toBe(503);
        expect(body, path).toContain("DEV_SIGN_IN is set together with Cloudflare Access settings");
      }
      const htmx = await client.get("/admin/operations/live", { cookie: validCookie, "hx-request": "true" });
      expect(htmx.status).toBe(503);
      expect(htmx.headers.get("hx-redirect")).toBeNull();
      const post = await client.post("/admin/sign-in", { userId: user.id });
      expect(post.status).toBe(404);
      expect(post.headers.getSetCookie()).toEqual([]);
    }
  });

  it("neither Access nor dev sign-in configured: 503 saying what to set", async () => {
    const res = await new AdminClient(accessEnv({ ACCESS_TEAM_DOMAIN: undefined, ACCESS_AUD: undefined })).get("/admin/operations");
    expect(res.status).toBe(503);
    const body = await res.text();
    expect(body).toContain("ACCESS_TEAM_DOMAIN");
    expect(body).toContain("DEV_SIGN_IN=1");
  });

  it("Access with a team domain that is not a cloudflareaccess.com URL: 503", async () => {
    for (const team of ["http://team.cloudflareaccess.com", "https://team.example.com", "team.cloudflareaccess.com"]) {
      const res = await new AdminClient(accessEnv({ ACCESS_TEAM_DOMAIN: team })).get("/admin/operations");
      expect(res.status, team).toBe(503);
      expect(await res.text()).toContain("ACCESS_TEAM_DOMAIN must look like");
    }
  });

  it("a SESSION_SECRET under 32 characters: 503 naming it; 32 characters is enough", async () => {
    const short = await new AdminClient(devEnv({ SESSION_SECRET: "s".repeat(31) })).get("/admin/sign-in");
    expect(short.status).toBe(503);
    expect(await short.text()).toContain("SESSION_SECRET of at least 32 characters");
    const missing = await new AdminClient(devEnv({ SESSION_SECRET: undefined })).get("/admin/operations");
    expect(missing.status).toBe(503);
    expect((await new AdminClient(devEnv({ SESSION_SECRET: "s".repeat(32) })).get("/admin/sign-in")).status).toBe(200);
  });
});

describe("workspace switcher", () => {
  async function twoMemberships() {
    const svc = runService();
    // Memberships are ordered by workspace name: "a-…" is the default current one.
    const [first, second, foreign] = await Promise.all([makeWorkspace("a-first"), makeWorkspace("b-second"), makeWorkspace("c-foreign")]);
    const [firstRun, secondRun, foreignRun] = await Promise.all([
      createExecutionFailure(svc, first),
      createExecutionFailure(svc, second),
      createExecutionFailure(svc, foreign),
    ]);
    const user = await seedUser([
      [first, "owner"],
      [second, "viewer"],
    ]);
    return { first, second, foreign, firstRun, secondRun, foreignRun, client: await signIn(user.id) };
  }

  it("lists the viewer's workspaces, current one selected", async () => {
    const w = await twoMemberships();
    const options = await parseHtml(await w.client.html("/admin/operations"), 'select[name="workspaceId"] option');
    expect(options.map((o) => o.attrs.value)).toEqual([w.first, w.second]);
    expect(options.filter((o) => "selected" in o.attrs).map((o) => o.attrs.value)).toEqual([w.first]);
  });

  it("switching to a workspace you belong to shows its runs, with your role there", async () => {
    const w = await twoMemberships();
    expect(await runIdsShown(await w.client.html("/admin/operations"))).toEqual([w.firstRun]);
    const res = await w.client.post("/admin/workspace", { workspaceId: w.second });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/admin/operations");
    expect(res.headers.getSetCookie().find((c) => c.startsWith("oplife_ws="))).toMatch(/HttpOnly/i);

    const page = await w.client.html("/admin/operations");
    expect(await runIdsShown(page)).toEqual([w.secondRun]);
    expect(squash((await one(page, ".who__user .role")).text)).toBe("viewer");
    // Capabilities follow the current workspace: a viewer there cannot read its audit log.
    expect((await w.client.get("/admin/audit-log")).status).toBe(403);
    expect((await w.client.get(`/admin/operations/${w.firstRun}`)).status).toBe(404);
    expect((await w.client.get(`/admin/operations/${w.secondRun}`)).status).toBe(200);
  });

  it("switching to a workspace you do not belong to is a 404 and changes nothing", async () => {
    const w = await twoMemberships();
    const res = await w.client.post("/admin/workspace", { workspaceId: w.foreign });
    expect(res.status).toBe(404);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(await runIdsShown(await w.client.html("/admin/operations"))).toEqual([w.firstRun]);
  });

  it("a forged workspace cookie naming a foreign workspace is ignored", async () => {
    const w = await twoMemberships();
    w.client.cookies.set("oplife_ws", w.foreign);
    const page = await w.client.html("/admin/operations");
    expect(await runIdsShown(page)).toEqual([w.firstRun]);
    expect(page).not.toContain(w.foreignRun);
  });

  it("CSRF: a switch posted without an Origin, or from a foreign one, is refused (403) and switches nothing", async () => {
    const w = await twoMemberships();
    const cases: Record<string, Record<string, string>> = {
      "no Origin": {},
      "foreign Origin": { origin: "https://evil.example" },
      "look-alike Origin": { origin: `${ORIGIN}.evil.example` },
      "cross-site fetch metadata": { "sec-fetch-site": "cross-site" },
    };
    for (const [name, headers] of Object.entries(cases)) {
      const res = await w.client.post("/admin/workspace", { workspaceId: w.second }, headers);
      expect(res.status, name).toBe(403);
      expect(res.headers.getSetCookie(), name).toEqual([]);
      expect((await one(await res.text(), ".error-page h1")).text, name).toBe("Request refused");
    }
    expect(await runIdsShown(await w.client.html("/admin/operations"))).toEqual([w.firstRun]);
    // The same post from the admin's own origin works.
    expect((await w.client.post("/admin/workspace", { workspaceId: w.second })).status).toBe(303);
  });
});
