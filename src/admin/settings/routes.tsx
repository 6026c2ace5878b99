/**
 * /admin/settings: owners manage their workspace's API tokens and members.
 * Every route is scoped by the viewer's current workspace (a token or member
 * of another workspace is a 404), needs the `settings:manage` capability
 * (operators and viewers get 403), comes through the admin's csrf() Origin
 * check, and writes one guarded batch with an audit event naming the owner
 * (`user:<email>`, their id in the metadata). The writes are the statements
 * the CLI uses (src/tenancy), so the rules are the same: one live token per
 * name, the last owner stays.
 */
import { Hono, type Context } from "hono";
import { runBatch, prepared } from "../../db/d1";
import type { MembershipRole } from "../../db/schema";
import type { SqlStatement } from "../../db/statements";
import { newEventId } from "../../runs/ids";
import {
  addMemberSql,
  createTokenSql,
  email as emailSchema,
  eventExistsSql,
  firstIssue,
  listMembersSql,
  listTokensSql,
  liveTokenByNameSql,
  memberByIdSql,
  newApiToken,
  newTokenId,
  newUserId,
  personName,
  personSql,
  removeMemberSql,
  revokeTokenSql,
  role as roleSchema,
  setRoleSql,
  sha256Hex,
  tokenByIdSql,
  tokenName,
  type ActorRef,
  type MemberRow,
  type PersonRow,
  type TokenRow,
} from "../../tenancy";
import { authMode } from "../auth/mode";
import { AdminHttpError, requireCapability, type AdminEnv } from "../auth/viewer";
import { Layout } from "../views/layout";
import { MembersView, TokensView, type Notice } from "./views";
import { createWebhookSettings } from "./webhooks";

type C = Context<AdminEnv>;

const TOKEN_ID = /^tok_[0-9a-z_-]{1,64}$/i;
const USER_ID = /^usr_[0-9a-z_-]{1,64}$/i;

const field = (form: Record<string, unknown>, name: string): string => (typeof form[name] === "string" ? form[name] : "");

function actorOf(c: C): ActorRef {
  const { user } = c.get("viewer");
  return { actor: `user:${user.email}`, metadata: { actorId: user.id } };
}

async function rows<T>(c: C, s: SqlStatement): Promise<T[]> {
  return (await prepared(c.env.DB, s).all<T>()).results;
}

/** Apply a guarded write; false when it lost to a concurrent change (its event was not written). */
async function applied(c: C, statements: SqlStatement[], eventId: string): Promise<boolean> {
  const results = await runBatch(c.env.DB, [...statements, eventExistsSql(eventId)]);
  const check = results.at(-1)?.results?.[0] as { won?: number } | undefined;
  return Number(check?.won) === 1;
}

const CHANGED_MEANWHILE: Notice = { kind: "error", text: "Someone changed this at the same moment; nothing was written. Look again and retry." };

export function createSettings() {
  const settings = new Hono<AdminEnv>();
  settings.use("*", requireCapability("settings:manage"));

  const page = (c: C, title: string, body: unknown, status: 200 | 400 | 404 | 409 = 200) =>
    c.html(
      <Layout title={title} viewer={c.get("viewer")} active="settings" devSignIn={authMode(c.env).kind === "dev"}>
        {body as never}
      </Layout>,
      status,
    );

  // ---------- API tokens ----------

  const tokensPage = async (c: C, opts: { created?: { name: string; token: string }; notice?: Notice; status?: 200 | 400 | 409 } = {}) => {
    const current = c.get("viewer").current;
    const tokens = await rows<TokenRow>(c, listTokensSql({ id: current.workspaceId }));
    return page(
      c,
      "API tokens",
      <TokensView tokens={tokens} workspaceName={current.name} created={opts.created ?? null} notice={opts.notice ?? null} now={Date.now()} />,
      opts.status,
    );
  };

  settings.get("/", (c) => c.redirect("/admin/settings/tokens", 302));
  settings.get("/tokens", (c) => tokensPage(c));

  settings.post("/tokens", async (c) => {
    const ws = c.get("viewer").current.workspaceId;
    const parsed = tokenName.safeParse(field(await c.req.parseBody(), "name"));
    if (!parsed.success) return tokensPage(c, { notice: { kind: "error", text: firstIssue(parsed.error) }, status: 400 });
    const name = parsed.data;
    const [live] = await rows<TokenRow>(c, liveTokenByNameSql({ id: ws }, name));
    if (live) return tokensPage(c, { notice: { kind: "error", text: `A live token is already named “${name}”. Revoke it first, or pick another name.` }, status: 409 });
    const token = newApiToken();
    const now = Date.now();
    const eventId = newEventId(now);
    const ok = await applied(c, createTokenSql({ id: newTokenId(), workspaceId: ws, name, tokenHash: await sha256Hex(token), now, by: actorOf(c), eventId }), eventId);
    if (!ok) return tokensPage(c, { notice: CHANGED_MEANWHILE, status: 409 });
    // Shown in this answer and never again; the admin's Cache-Control: no-store keeps it out of caches.
    return tokensPage(c, { created: { name, token } });
  });

  settings.post("/tokens/:id/revoke", async (c) => {
    const ws = c.get("viewer").current.workspaceId;
    const id = c.req.param("id");
    const [token] = TOKEN_ID.test(id) ? await rows<TokenRow>(c, tokenByIdSql({ id: ws }, id)) : [];
    if (!token) throw new AdminHttpError(404, "Token not found", "There is no such API token in this workspace.");
    if (token.revoked_at === null) {
      const now = Date.now();
      const eventId = newEventId(now);
      // Lost only to a concurrent revoke of the same token: the outcome the owner asked for.
      await applied(c, revokeTokenSql({ workspaceId: ws, id, name: token.name, now, by: actorOf(c), eventId }), eventId);
    }
    return c.redirect("/admin/settings/tokens", 303);
  });

  settings.route("/webhooks", createWebhookSettings());

  // ---------- members ----------

  const membersPage = async (c: C, opts: { notice?: Notice; status?: 200 | 400 | 404 | 409 } = {}) => {
    const { current, user } = c.get("viewer");
    const members = await rows<MemberRow>(c, listMembersSql({ id: current.workspaceId }));
    return page(
      c,
      "Members",
      <MembersView members={members} workspaceName={current.name} viewerId={user.id} notice={opts.notice ?? null} now={Date.now()} />,
      opts.status,
    );
  };

  settings.get("/members", (c) => membersPage(c));

  settings.post("/members", async (c) => {
    const ws = c.get("viewer").current.workspaceId;
    const form = await c.req.parseBody();
    const email = emailSchema.safeParse(field(form, "email"));
    const role = roleSchema.safeParse(field(form, "role"));
    const rawName = field(form, "name").trim();
    const name = rawName === "" ? null : personName.safeParse(rawName);
    const bad = [email, role, name].find((r) => r !== null && !r.success);
    if (bad && !bad.success) return membersPage(c, { notice: { kind: "error", text: firstIssue(bad.error) }, status: 400 });
    if (!email.success || !role.success || (name && !name.success)) throw new Error("unreachable: validated above");
    const [person] = await rows<PersonRow>(c, personSql({ id: ws }, email.data));
    if (person?.role) return membersPage(c, { notice: { kind: "error", text: `${email.data} is already a member (${person.role}).` }, status: 409 });
    const user = person
      ? { id: person.user_id, email: email.data, name: person.name, isNew: false }
      : { id: newUserId(), email: email.data, name: name?.data ?? email.data.slice(0, email.data.indexOf("@")), isNew: true };
    const now = Date.now();
    const eventId = newEventId(now);
    if (!(await applied(c, addMemberSql({ workspaceId: ws, user, role: role.data, now, by: actorOf(c), eventId }), eventId))) {
      return membersPage(c, { notice: CHANGED_MEANWHILE, status: 409 });
    }
    return c.redirect("/admin/settings/members", 303);
  });

  /** A member of the current workspace by the id in the path; 404 for anyone else. */
  const memberOf = async (c: C): Promise<MemberRow & { role: MembershipRole }> => {
    const id = c.req.param("userId") ?? "";
    const [m] = USER_ID.test(id) ? await rows<MemberRow>(c, memberByIdSql({ id: c.get("viewer").current.workspaceId }, id)) : [];
    if (!m) throw new AdminHttpError(404, "Member not found", "There is no such member in this workspace.");
    return m;
  };

  const ownerCount = async (c: C) =>
    (await rows<MemberRow>(c, listMembersSql({ id: c.get("viewer").current.workspaceId }))).filter((m) => m.role === "owner").length;

  const LAST_OWNER = (email: string): Notice => ({
    kind: "error",
    text: `${email} is the last owner of this workspace. Make someone else owner first.`,
  });

  settings.post("/members/:userId/role", async (c) => {
    const ws = c.get("viewer").current.workspaceId;
    const m = await memberOf(c);
    const role = roleSchema.safeParse(field(await c.req.parseBody(), "role"));
    if (!role.success) return membersPage(c, { notice: { kind: "error", text: firstIssue(role.error) }, status: 400 });
    if (role.data === m.role) return c.redirect("/admin/settings/members", 303);
    if (m.role === "owner" && (await ownerCount(c)) <= 1) return membersPage(c, { notice: LAST_OWNER(m.email), status: 409 });
    const now = Date.now();
    const eventId = newEventId(now);
    const ok = await applied(c, setRoleSql({ workspaceId: ws, userId: m.user_id, email: m.email, from: m.role, to: role.data, now, by: actorOf(c), eventId }), eventId);
    if (!ok) return membersPage(c, { notice: CHANGED_MEANWHILE, status: 409 });
    return c.redirect("/admin/settings/members", 303);
  });

  settings.post("/members/:userId/remove", async (c) => {
    const ws = c.get("viewer").current.workspaceId;
    const m = await memberOf(c);
    if (m.role === "owner" && (await ownerCount(c)) <= 1) return membersPage(c, { notice: LAST_OWNER(m.email), status: 409 });
    const now = Date.now();
    const eventId = newEventId(now);
    const ok = await applied(c, removeMemberSql({ workspaceId: ws, userId: m.user_id, email: m.email, role: m.role, now, by: actorOf(c), eventId }), eventId);
    if (!ok) return membersPage(c, { notice: CHANGED_MEANWHILE, status: 409 });
    return c.redirect("/admin/settings/members", 303);
  });

  return settings;
}
