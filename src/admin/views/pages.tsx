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

export function ErrorView({ status, title, detail, signIn }: { status: number; title: string; detail: string; signIn?: boolean }) {
  return (
    <Layout title={title} viewer={null}>
      <div class="error-page" data-status={String(status)}>
        <h1>{title}</h1>
        <p>{detail}</p>
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
