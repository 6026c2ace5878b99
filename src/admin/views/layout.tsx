import type { Child } from "hono/jsx";
import { can } from "../auth/capabilities";
import type { Viewer } from "../auth/viewer";

// htmx settings that keep it inside the CSP (style-src 'self'): htmx would otherwise inject a <style> for its
// indicator classes, which the CSP blocks; public/admin.css carries those rules instead. No eval either.
const HTMX_CONFIG = JSON.stringify({
  includeIndicatorStyles: false,
  allowEval: false,
  allowScriptTags: false,
  historyCacheSize: 10,
  selfRequestsOnly: true,
});

export function Layout({
  title,
  viewer,
  active,
  devSignIn,
  children,
}: {
  title: string;
  viewer: Viewer | null;
  active?: "operations" | "audit" | "lifecycle" | "settings";
  devSignIn?: boolean;
  children: Child;
}) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="htmx-config" content={HTMX_CONFIG} />
        <title>{`${title} · oplife`}</title>
        {/* No icon: without this the browser asks for /favicon.ico on every page and logs its 404 as a console error. */}
        <link rel="icon" href="data:," />
        <link rel="stylesheet" href="/admin.css" />
        <script src="/vendor/htmx.min.js" defer></script>
        {/* idiomorph's htmx extension ("morph" swaps): live refreshes update rows in place, keeping focus and scroll. */}
        <script src="/vendor/idiomorph-ext.min.js" defer></script>
        <script src="/admin.js" defer></script>
      </head>
      <body hx-ext="morph">
        <a class="skip-link" href="#main">
          Skip to content
        </a>
        <header class="topbar">
          <a class="brand" href="/admin/operations">
            oplife
          </a>
          {viewer ? (
            <nav class="nav" aria-label="Main">
              <a href="/admin/operations" aria-current={active === "operations" ? "page" : undefined}>
                Operations
              </a>
              {can(viewer.current.role, "audit:read") ? (
                <a href="/admin/audit-log" aria-current={active === "audit" ? "page" : undefined}>
                  Audit log
                </a>
              ) : null}
              <a href="/admin/lifecycle" aria-current={active === "lifecycle" ? "page" : undefined}>
                Lifecycle
              </a>
              {viewer.current.role === "owner" ? (
                <a href="/admin/settings/tokens" aria-current={active === "settings" ? "page" : undefined}>
                  Settings
                </a>
              ) : null}
            </nav>
          ) : null}
          {viewer ? (
            <div class="who">
              <form method="post" action="/admin/workspace" class="switcher">
                <label>
                  <span class="sr-only">Workspace</span>
                  <select name="workspaceId" aria-label="Workspace">
                    {viewer.memberships.map((m) => (
                      <option value={m.workspaceId} selected={m.workspaceId === viewer.current.workspaceId}>
                        {m.name}
                      </option>
                    ))}
                  </select>
                </label>
                <button type="submit" class="button button--small">
                  Switch
                </button>
              </form>
              <span class="who__user" title={viewer.user.email}>
                {viewer.user.name} · <span class="role">{viewer.current.role}</span>
              </span>
              {devSignIn ? (
                <form method="post" action="/admin/sign-out">
                  <button type="submit" class="button button--small button--ghost">
                    Sign out
                  </button>
                </form>
              ) : null}
            </div>
          ) : null}
        </header>
        <main class="main" id="main" tabindex={-1}>
          {children}
        </main>
        {/* State changes seen by live refreshes are announced here (public/admin.js), politely: never mid-sentence. */}
        <div id="announcer" class="sr-only" role="status" aria-live="polite" aria-atomic="true"></div>
      </body>
    </html>
  );
}
