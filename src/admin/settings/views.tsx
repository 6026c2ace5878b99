/**
 * The owners' settings pages: API tokens and members. Every dynamic string
 * goes through JSX, which escapes it. A new token is rendered once, in the
 * answer to the form that created it, and never again (only its SHA-256 is
 * stored).
 */
import { MEMBERSHIP_ROLES } from "../../db/schema";
import type { MemberRow, TokenRow } from "../../tenancy";
import { EmptyState, RelTime } from "../views/components";

export interface Notice {
  kind: "error" | "done";
  text: string;
}

export function NoticeBox({ notice }: { notice: Notice | null }) {
  if (!notice) return null;
  return notice.kind === "error" ? (
    <div class="callout callout--bad" role="alert" data-notice="error">
      {notice.text}
    </div>
  ) : (
    <div class="callout" role="status" data-notice="done">
      {notice.text}
    </div>
  );
}

export function SettingsNav({ active }: { active: "tokens" | "members" | "webhooks" }) {
  return (
    <nav class="filters" aria-label="Settings">
      <a href="/admin/settings/tokens" aria-current={active === "tokens" ? "page" : undefined}>
        API tokens
      </a>{" "}
      ·{" "}
      <a href="/admin/settings/members" aria-current={active === "members" ? "page" : undefined}>
        Members
      </a>{" "}
      ·{" "}
      <a href="/admin/settings/webhooks" aria-current={active === "webhooks" ? "page" : undefined}>
        Webhooks
      </a>
    </nav>
  );
}

export function TokensView({
  tokens,
  workspaceName,
  created,
  notice,
  now,
}: {
  tokens: TokenRow[];
  workspaceName: string;
  /** The token just created: shown in this answer only. */
  created: { name: string; token: string } | null;
  notice: Notice | null;
  now: number;
}) {
  return (
    <>
      <div class="page-head">
        <h1>API tokens</h1>
        <p class="muted">Bearer tokens for the JSON API of {workspaceName}. Only a token's SHA-256 is stored.</p>
      </div>
      <SettingsNav active="tokens" />
      <NoticeBox notice={notice} />
      {created ? (
        <div class="callout callout--warn" role="status" data-created-token={created.name}>
          <p class="callout__title">Token “{created.name}” created. Copy it now: it is shown only this once.</p>
          <p>
            <code data-token>{created.token}</code>
          </p>
        </div>
      ) : null}
      <form method="post" action="/admin/settings/tokens" class="filters">
        <label>
          Name <input type="text" name="name" required maxlength={100} placeholder="e.g. CI deploy" />
        </label>
        <button type="submit" class="button">
          Create token
        </button>
      </form>
      {tokens.length === 0 ? (
        <EmptyState title="No API tokens yet.">Create one above, or with `npm run oplife -- token create`.</EmptyState>
      ) : (
        <table class="events" data-table="tokens">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Created</th>
              <th scope="col">Last used</th>
              <th scope="col">Status</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => (
              <tr data-token-id={t.id} data-state={t.revoked_at === null ? "live" : "revoked"}>
                <td>{t.name}</td>
                <td>
                  <RelTime ms={t.created_at} now={now} />
                </td>
                <td>{t.last_used_at === null ? <span class="muted">never</span> : <RelTime ms={t.last_used_at} now={now} />}</td>
                <td>
                  {t.revoked_at === null ? (
                    "Live"
                  ) : (
                    <>
                      Revoked <RelTime ms={t.revoked_at} now={now} />
                    </>
                  )}
                </td>
                <td>
                  {t.revoked_at === null ? (
                    <form method="post" action={`/admin/settings/tokens/${t.id}/revoke`}>
                      <button type="submit" class="button button--small" aria-label={`Revoke ${t.name}`}>
                        Revoke
                      </button>
                    </form>
                  ) : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function MembersView({
  members,
  workspaceName,
  viewerId,
  notice,
  now,
}: {
  members: MemberRow[];
  workspaceName: string;
  viewerId: string;
  notice: Notice | null;
  now: number;
}) {
  return (
    <>
      <div class="page-head">
        <h1>Members</h1>
        <p class="muted">People who can sign in to {workspaceName}, by the email Cloudflare Access presents.</p>
      </div>
      <SettingsNav active="members" />
      <NoticeBox notice={notice} />
      <form method="post" action="/admin/settings/members" class="filters">
        <label>
          Email <input type="email" name="email" required maxlength={254} />
        </label>
        <label>
          Name <input type="text" name="name" maxlength={100} placeholder="for a new user" />
        </label>
        <label>
          Role{" "}
          <select name="role">
            {MEMBERSHIP_ROLES.map((r) => (
              <option value={r} selected={r === "viewer"}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="button">
          Add member
        </button>
      </form>
      <table class="events" data-table="members">
        <thead>
          <tr>
            <th scope="col">Email</th>
            <th scope="col">Name</th>
            <th scope="col">Role</th>
            <th scope="col">Added</th>
            <th scope="col">
              <span class="sr-only">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {members.map((m) => (
            <tr data-user-id={m.user_id} data-role={m.role}>
              <td>
                {m.email}
                {m.user_id === viewerId ? <span class="muted"> (you)</span> : null}
              </td>
              <td>{m.name}</td>
              <td>
                <form method="post" action={`/admin/settings/members/${m.user_id}/role`}>
                  <select name="role" aria-label={`Role of ${m.email}`}>
                    {MEMBERSHIP_ROLES.map((r) => (
                      <option value={r} selected={r === m.role}>
                        {r}
                      </option>
                    ))}
                  </select>{" "}
                  <button type="submit" class="button button--small">
                    Change
                  </button>
                </form>
              </td>
              <td>
                <RelTime ms={m.created_at} now={now} />
              </td>
              <td>
                <form method="post" action={`/admin/settings/members/${m.user_id}/remove`}>
                  <button type="submit" class="button button--small button--ghost" aria-label={`Remove ${m.email}`}>
                    Remove
                  </button>
                </form>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {members.length === 0 ? <EmptyState title="No members." /> : null}
    </>
  );
}
