import type { Viewer } from "../auth/viewer";
import { Layout } from "./layout";

export function SignInView({ users }: { users: Array<{ id: string; email: string; name: string; roles: string }> }) {
  return (
    <Layout title="Sign in" viewer={null}>
      <div class="signin">
        <h1>Sign in (local development)</h1>
        <p class="muted">
          This page exists only with <code>DEV_SIGN_IN=1</code>. In production the admin is behind Cloudflare Access.
        </p>
        {users.length === 0 ? (
          <p>No users yet: run <code>npm start</code>, which seeds the demo workspace.</p>
        ) : (
          <ul class="signin__users">
            {users.map((u) => (
              <li>
                <form method="post" action="/admin/sign-in">
                  <input type="hidden" name="userId" value={u.id} />
                  <button type="submit" class="button" data-email={u.email}>
                    {u.name} <span class="muted">({u.email} · {u.roles})</span>
                  </button>
                </form>
              </li>
            ))}
          </ul>
        )}
      </div>
    </Layout>
  );
}

/**
 * An error page. For a signed-in viewer (a 403 for a page their role may not
 * open, a 404) it keeps the navigation and offers the way back.
 */
export function ErrorView({
  status,
  title,
  detail,
  signIn,
  viewer = null,
  devSignIn,
}: {
  status: number;
  title: string;
  detail: string;
  signIn?: boolean;
  viewer?: Viewer | null;
  devSignIn?: boolean;
}) {
  return (
    <Layout title={title} viewer={viewer} devSignIn={devSignIn ?? false}>
      <div class="error-page" data-status={String(status)}>
        <h1>{title}</h1>
        <p>{detail}</p>
        {viewer ? (
          <p>
            <a class="button" href="/admin/operations">
              Back to operations
            </a>
          </p>
        ) : null}
        {signIn ? (
          <p>
            <a class="button" href="/admin/sign-in">
              Sign in
            </a>
          </p>
        ) : null}
      </div>
    </Layout>
  );
}
