/**
 * What each `npm run oplife` command does: validate, read what it needs,
 * refuse with a UsageError (exit 2) when the request cannot be met, then one
 * all-or-nothing write (scripts/cli/d1.ts) of the statements shared with the
 * admin (src/tenancy). Each returns its result for people and for `--json`.
 */
import type { z } from "zod";
import type { MembershipRole } from "../../src/db/schema";
import type { SqlStatement } from "../../src/db/statements";
import { newEventId } from "../../src/runs/ids";
import {
  addMemberSql,
  createTokenSql,
  createWorkspaceSql,
  email as emailSchema,
  eventExistsSql,
  firstIssue,
  listMembersSql,
  listTokensSql,
  listWorkspacesSql,
  liveTokenByNameSql,
  newApiToken,
  newTokenId,
  newUserId,
  newWorkspaceId,
  personName,
  personSql,
  removeMemberSql,
  revokeTokenSql,
  role as roleSchema,
  setRoleSql,
  sha256Hex,
  tokenName,
  workspaceBySlugSql,
  workspaceName,
  workspaceSlug,
  type ActorRef,
  type MemberRow,
  type PersonRow,
  type TokenRow,
  type WorkspaceRow,
} from "../../src/tenancy";
import { UsageError } from "../lib/project";
import { DatabaseError, read, readAll, write, type Target } from "./d1";

export interface Output {
  /** For people: lines on stdout. */
  text: string;
  /** For scripts (`--json`). */
  json: unknown;
}

/** Events written by the command line name it as their actor. */
const CLI: ActorRef = { actor: "system:cli", metadata: {} };

function valid<S extends z.ZodType>(schema: S, value: unknown, flag: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new UsageError(`${flag}: ${firstIssue(r.error)}`);
  return r.data;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** Guarded writes apply nothing when the state changed since it was read; say so rather than claim success. */
async function applied(target: Target, statements: SqlStatement[], eventId: string, what: string): Promise<void> {
  const [row] = await write<{ won: number }>(target, statements, eventExistsSql(eventId));
  if (Number(row?.won) !== 1) throw new DatabaseError(`${what} was not applied: the database changed meanwhile. Nothing was written; run the command again.`);
}

/**
 * The workspace named by `--workspace`, and the rows of `also` (statements
 * about that workspace, by slug), in one round trip.
 */
async function workspaceAnd<T extends unknown[]>(
  target: Target,
  slug: string,
  also: (ws: { slug: string }) => SqlStatement[] = () => [],
): Promise<{ ws: WorkspaceRow; rows: T }> {
  const s = valid(workspaceSlug, slug, "--workspace");
  const [found, ...rows] = await readAll(target, [workspaceBySlugSql(s), ...also({ slug: s })]);
  const ws = found?.[0] as WorkspaceRow | undefined;
  if (!ws) throw new UsageError(`no workspace with slug "${s}" (see \`workspace list\`)`);
  return { ws, rows: rows as T };
}

function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(headers), ...rows.map(line)].join("\n");
}

// ---------- workspaces ----------

export async function workspaceCreate(target: Target, o: { slug: string; name: string }): Promise<Output> {
  const slug = valid(workspaceSlug, o.slug, "--slug");
  const name = valid(workspaceName, o.name, "--name");
  const [taken] = await read<WorkspaceRow>(target, workspaceBySlugSql(slug));
  if (taken || slug === "system") throw new UsageError(`workspace "${slug}" already exists`);
  const now = Date.now();
  const id = newWorkspaceId();
  const eventId = newEventId(now);
  await applied(target, createWorkspaceSql({ id, slug, name, now, by: CLI, eventId }), eventId, `Creating workspace "${slug}"`);
  const json = { id, slug, name, createdAt: iso(now) };
  return { json, text: `Created workspace "${slug}" (${name}), id ${id}.\nNext: npm run oplife -- member add --workspace ${slug} --email <you> --role owner` };
}

export async function workspaceList(target: Target): Promise<Output> {
  const rows = await read<WorkspaceRow>(target, listWorkspacesSql());
  const json = rows.map((w) => ({ id: w.id, slug: w.slug, name: w.name, createdAt: iso(w.created_at), members: w.members, owners: w.owners }));
  const text =
    rows.length === 0
      ? "No workspaces yet. Create one: npm run oplife -- workspace create --slug <slug> --name <name>"
      : table(
          ["SLUG", "NAME", "MEMBERS", "OWNERS", "CREATED"],
          json.map((w) => [w.slug, w.name, String(w.members), String(w.owners), w.createdAt ?? ""]),
        );
  return { json, text };
}

// ---------- members ----------

async function memberOf(target: Target, slug: string, email: string): Promise<{ ws: WorkspaceRow; member: PersonRow & { role: MembershipRole } }> {
  const { ws, rows } = await workspaceAnd<[PersonRow[]]>(target, slug, (w) => [personSql(w, email)]);
  const person = rows[0][0];
  if (!person?.role) throw new UsageError(`${email} is not a member of "${ws.slug}"`);
  return { ws, member: { ...person, role: person.role } };
}

export async function memberAdd(target: Target, o: { workspace: string; email: string; role: string; name?: string }): Promise<Output> {
  const email = valid(emailSchema, o.email, "--email");
  const role = valid(roleSchema, o.role, "--role");
  const name = o.name === undefined ? undefined : valid(personName, o.name, "--name");
  const { ws, rows } = await workspaceAnd<[PersonRow[]]>(target, o.workspace, (w) => [personSql(w, email)]);
  const person = rows[0][0];
  if (person?.role) throw new UsageError(`${email} is already a member of "${ws.slug}" as ${person.role} (use \`member set-role\`)`);
  const user = person
    ? { id: person.user_id, email, name: person.name, isNew: false }
    : { id: newUserId(), email, name: name ?? email.slice(0, email.indexOf("@")), isNew: true };
  const now = Date.now();
  const eventId = newEventId(now);
  await applied(target, addMemberSql({ workspaceId: ws.id, user, role, now, by: CLI, eventId }), eventId, `Adding ${email}`);
  return {
    json: { workspace: ws.slug, userId: user.id, email, name: user.name, role, newUser: user.isNew },
    text: `Added ${email} to "${ws.slug}" as ${role}${user.isNew ? " (new user)" : ""}.`,
  };
}

export async function memberSetRole(target: Target, o: { workspace: string; email: string; role: string }): Promise<Output> {
  const email = valid(emailSchema, o.email, "--email");
  const role = valid(roleSchema, o.role, "--role");
  const { ws, member } = await memberOf(target, o.workspace, email);
  const json = { workspace: ws.slug, userId: member.user_id, email, from: member.role, role };
  if (member.role === role) return { json, text: `${email} is already ${role} in "${ws.slug}"; nothing changed.` };
  if (member.role === "owner" && ws.owners <= 1) {
    throw new UsageError(`${email} is the last owner of "${ws.slug}"; make someone else owner first`);
  }
  const now = Date.now();
  const eventId = newEventId(now);
  await applied(
    target,
    setRoleSql({ workspaceId: ws.id, userId: member.user_id, email, from: member.role, to: role, now, by: CLI, eventId }),
    eventId,
    `Changing the role of ${email}`,
  );
  return { json, text: `${email} is now ${role} in "${ws.slug}" (was ${member.role}).` };
}

export async function memberRemove(target: Target, o: { workspace: string; email: string }): Promise<Output> {
  const email = valid(emailSchema, o.email, "--email");
  const { ws, member } = await memberOf(target, o.workspace, email);
  if (member.role === "owner" && ws.owners <= 1) {
    throw new UsageError(`${email} is the last owner of "${ws.slug}" and cannot be removed; make someone else owner first`);
  }
  const now = Date.now();
  const eventId = newEventId(now);
  await applied(
    target,
    removeMemberSql({ workspaceId: ws.id, userId: member.user_id, email, role: member.role, now, by: CLI, eventId }),
    eventId,
    `Removing ${email}`,
  );
  return { json: { workspace: ws.slug, userId: member.user_id, email, removed: true }, text: `Removed ${email} from "${ws.slug}".` };
}

export async function memberList(target: Target, o: { workspace: string }): Promise<Output> {
  const { ws, rows: [rows] } = await workspaceAnd<[MemberRow[]]>(target, o.workspace, (w) => [listMembersSql(w)]);
  const json = rows.map((m) => ({ userId: m.user_id, email: m.email, name: m.name, role: m.role, addedAt: iso(m.created_at) }));
  return { json, text: rows.length === 0 ? `"${ws.slug}" has no members.` : table(["EMAIL", "NAME", "ROLE", "ADDED"], json.map((m) => [m.email, m.name, m.role, m.addedAt ?? ""])) };
}

// ---------- API tokens ----------

export async function tokenCreate(target: Target, o: { workspace: string; name: string }): Promise<Output> {
  const name = valid(tokenName, o.name, "--name");
  const { ws, rows: [[live]] } = await workspaceAnd<[TokenRow[]]>(target, o.workspace, (w) => [liveTokenByNameSql(w, name)]);
  if (live) throw new UsageError(`"${ws.slug}" already has a live token named "${name}" (revoke it first, or pick another name)`);
  const token = newApiToken();
  const id = newTokenId();
  const now = Date.now();
  const eventId = newEventId(now);
  await applied(
    target,
    createTokenSql({ id, workspaceId: ws.id, name, tokenHash: await sha256Hex(token), now, by: CLI, eventId }),
    eventId,
    `Creating token "${name}"`,
  );
  return {
    json: { id, workspace: ws.slug, name, createdAt: iso(now), token },
    text: [
      `Created API token "${name}" for "${ws.slug}" (${id}).`,
      "It is shown only this once; only its SHA-256 is stored:",
      "",
      `  ${token}`,
      "",
      `Use it as: Authorization: Bearer <token>`,
    ].join("\n"),
  };
}

export async function tokenList(target: Target, o: { workspace: string }): Promise<Output> {
  const { ws, rows: [rows] } = await workspaceAnd<[TokenRow[]]>(target, o.workspace, (w) => [listTokensSql(w)]);
  const json = rows.map((t) => ({
    id: t.id,
    name: t.name,
    createdAt: iso(t.created_at),
    lastUsedAt: iso(t.last_used_at),
    revokedAt: iso(t.revoked_at),
    revoked: t.revoked_at !== null,
  }));
  const text =
    rows.length === 0
      ? `"${ws.slug}" has no API tokens.`
      : table(
          ["NAME", "CREATED", "LAST USED", "STATUS"],
          json.map((t) => [t.name, t.createdAt ?? "", t.lastUsedAt ?? "never", t.revoked ? `revoked ${t.revokedAt}` : "live"]),
        );
  return { json, text };
}

export async function tokenRevoke(target: Target, o: { workspace: string; name: string }): Promise<Output> {
  const name = valid(tokenName, o.name, "--name");
  const { ws, rows: [[live]] } = await workspaceAnd<[TokenRow[]]>(target, o.workspace, (w) => [liveTokenByNameSql(w, name)]);
  if (!live) throw new UsageError(`"${ws.slug}" has no live token named "${name}" (see \`token list\`)`);
  const now = Date.now();
  const eventId = newEventId(now);
  await applied(target, revokeTokenSql({ workspaceId: ws.id, id: live.id, name, now, by: CLI, eventId }), eventId, `Revoking token "${name}"`);
  return { json: { id: live.id, workspace: ws.slug, name, revokedAt: iso(now) }, text: `Revoked API token "${name}" of "${ws.slug}". It answers 401 from now on.` };
}
