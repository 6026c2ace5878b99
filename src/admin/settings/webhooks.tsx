/**
 * /admin/settings/webhooks: the owners' completion webhooks. The list and
 * create/delete forms, and each endpoint's delivery log (tries, status
 * codes, next retry, the last error and a short sanitised excerpt of a
 * failed answer, all escaped by JSX). Mounted under the settings app, so the
 * `settings:manage` capability (owners) and the admin's csrf() Origin check
 * apply; every read and write is scoped by the viewer's current workspace.
 * The writes are src/webhooks/endpoints.ts, the API's own.
 */
import { Hono, type Context } from "hono";
import { authMode } from "../auth/mode";
import { AdminHttpError, type AdminEnv } from "../auth/viewer";
import { EmptyState, RelTime } from "../views/components";
import { Layout } from "../views/layout";
import {
  createEndpoint,
  deleteEndpoint,
  endpointDeliveries,
  endpointRequest,
  getEndpoint,
  listEndpoints,
  type DeliveryLogEntry,
  type WebhookEndpoint,
} from "../../webhooks/endpoints";
import { NoticeBox, SettingsNav, type Notice } from "./views";

type C = Context<AdminEnv>;

const field = (form: Record<string, unknown>, name: string): string => (typeof form[name] === "string" ? form[name] : "");

function EndpointsView({
  endpoints,
  workspaceName,
  created,
  notice,
  now,
}: {
  endpoints: WebhookEndpoint[];
  workspaceName: string;
  created: { endpoint: WebhookEndpoint; secret: string } | null;
  notice: Notice | null;
  now: number;
}) {
  return (
    <>
      <div class="page-head">
        <h1>Webhooks</h1>
        <p class="muted">
          {workspaceName} posts a signed <code>run.completed</code> event (Standard Webhooks) to each endpoint when a run ends.
        </p>
      </div>
      <SettingsNav active="webhooks" />
      <NoticeBox notice={notice} />
      {created ? (
        <div class="callout callout--warn" role="status" data-created-endpoint={created.endpoint.id}>
          <p class="callout__title">Endpoint created. Copy its signing secret now: it is shown only this once.</p>
          <p>
            <code data-secret>{created.secret}</code>
          </p>
        </div>
      ) : null}
      <form method="post" action="/admin/settings/webhooks" class="filters">
        <label>
          URL <input type="url" name="url" required maxlength={2048} placeholder="https://example.com/hooks/oplife" />
        </label>
        <label>
          Description <input type="text" name="description" maxlength={200} />
        </label>
        <button type="submit" class="button">
          Add endpoint
        </button>
      </form>
      {endpoints.length === 0 ? (
        <EmptyState title="No webhook endpoints yet.">Add one above, or with POST /api/v1/webhook-endpoints.</EmptyState>
      ) : (
        <table class="events" data-table="webhook-endpoints">
          <thead>
            <tr>
              <th scope="col">URL</th>
              <th scope="col">Description</th>
              <th scope="col">Events</th>
              <th scope="col">Created</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {endpoints.map((e) => (
              <tr data-endpoint-id={e.id}>
                <td>
                  <a href={`/admin/settings/webhooks/${e.id}`}>{e.url}</a>
                </td>
                <td>{e.description ?? <span class="muted">—</span>}</td>
                <td>{e.eventTypes ? e.eventTypes.join(", ") : "all"}</td>
                <td>
                  <RelTime ms={e.createdAt} now={now} />
                </td>
                <td>
                  <form method="post" action={`/admin/settings/webhooks/${e.id}/delete`}>
                    <button type="submit" class="button button--small button--ghost" aria-label={`Delete the endpoint ${e.url}`}>
                      Delete
                    </button>
                  </form>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

const STATUS_LABEL: Record<DeliveryLogEntry["status"], string> = { pending: "Retrying", delivered: "Delivered", failed: "Given up" };

function DeliveryLogView({ endpoint, deliveries, now }: { endpoint: WebhookEndpoint; deliveries: DeliveryLogEntry[]; now: number }) {
  return (
    <>
      <div class="page-head">
        <h1>Delivery log</h1>
        <p class="muted">
          <code>{endpoint.url}</code> — the latest {deliveries.length} deliveries, newest first.
        </p>
      </div>
      <SettingsNav active="webhooks" />
      {deliveries.length === 0 ? (
        <EmptyState title="Nothing delivered yet.">An event is sent here when a run of this workspace completes.</EmptyState>
      ) : (
        <table class="events" data-table="webhook-deliveries">
          <thead>
            <tr>
              <th scope="col">webhook-id</th>
              <th scope="col">Run</th>
              <th scope="col">Status</th>
              <th scope="col">Tries</th>
              <th scope="col">Last answer</th>
              <th scope="col">Next try</th>
            </tr>
          </thead>
          <tbody>
            {deliveries.map((d) => (
              <tr data-webhook-id={d.messageId} data-status={d.status}>
                <td>
                  <code>{d.messageId}</code>
                </td>
                <td>
                  <a href={`/admin/operations/${d.runId}`}>{d.runId}</a>
                </td>
                <td>{d.status === "pending" && d.attempts === 0 ? "Sending" : STATUS_LABEL[d.status]}</td>
                <td>
                  {d.attempts}
                  {d.tries.length > 0 ? (
                    <details>
                      <summary>Each try</summary>
                      <ol>
                        {d.tries.map((t) => (
                          <li data-try={String(t.attempt)}>
                            <RelTime ms={t.at} now={now} />: {t.statusCode === null ? "no answer" : `HTTP ${t.statusCode}`}
                            {t.error ? ` — ${t.error}` : ""}
                            {t.excerpt ? (
                              <>
                                {" "}
                                <q class="muted">{t.excerpt}</q>
                              </>
                            ) : null}
                          </li>
                        ))}
                      </ol>
                    </details>
                  ) : null}
                </td>
                <td>
                  {d.lastStatusCode === null ? <span class="muted">—</span> : `HTTP ${d.lastStatusCode}`}
                  {d.lastError ? <div class="muted">{d.lastError}</div> : null}
                </td>
                <td>{d.status === "pending" ? <RelTime ms={d.nextAttemptAt} now={now} /> : <span class="muted">—</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

export function createWebhookSettings() {
  const webhooks = new Hono<AdminEnv>();

  const page = (c: C, title: string, body: unknown, status: 200 | 400 | 409 = 200) =>
    c.html(
      <Layout title={title} viewer={c.get("viewer")} active="settings" devSignIn={authMode(c.env).kind === "dev"}>
        {body as never}
      </Layout>,
      status,
    );

  const listPage = async (c: C, opts: { created?: { endpoint: WebhookEndpoint; secret: string }; notice?: Notice; status?: 200 | 400 | 409 } = {}) => {
    const current = c.get("viewer").current;
    const endpoints = await listEndpoints(c.env.DB, current.workspaceId);
    return page(
      c,
      "Webhooks",
      <EndpointsView endpoints={endpoints} workspaceName={current.name} created={opts.created ?? null} notice={opts.notice ?? null} now={Date.now()} />,
      opts.status,
    );
  };

  const endpointOf = async (c: C): Promise<WebhookEndpoint> => {
    const endpoint = await getEndpoint(c.env.DB, c.get("viewer").current.workspaceId, c.req.param("id") ?? "");
    if (!endpoint) throw new AdminHttpError(404, "Endpoint not found", "There is no such webhook endpoint in this workspace.");
    return endpoint;
  };

  const acting = (c: C) => {
    const { user } = c.get("viewer");
    return { actor: `user:${user.email}` as const, actorId: user.id };
  };

  webhooks.get("/", (c) => listPage(c));

  webhooks.post("/", async (c) => {
    const form = await c.req.parseBody();
    const description = field(form, "description").trim();
    const req = endpointRequest.safeParse({ url: field(form, "url").trim(), ...(description ? { description } : {}) });
    if (!req.success) return listPage(c, { notice: { kind: "error", text: req.error.issues[0]?.message ?? "Invalid endpoint." }, status: 400 });
    const created = await createEndpoint(c.env, c.get("viewer").current.workspaceId, req.data, acting(c));
    if (!created.ok) return listPage(c, { notice: { kind: "error", text: created.message }, status: created.status });
    // Shown in this answer and never again; the admin's Cache-Control: no-store keeps it out of caches.
    return listPage(c, { created: { endpoint: created.endpoint, secret: created.secret } });
  });

  webhooks.get("/:id", async (c) => {
    const endpoint = await endpointOf(c);
    const deliveries = await endpointDeliveries(c.env.DB, endpoint.id);
    return page(c, "Delivery log", <DeliveryLogView endpoint={endpoint} deliveries={deliveries} now={Date.now()} />);
  });

  webhooks.post("/:id/delete", async (c) => {
    const endpoint = await endpointOf(c);
    // Lost only to a concurrent delete of the same endpoint: the outcome the owner asked for.
    await deleteEndpoint(c.env.DB, c.get("viewer").current.workspaceId, endpoint, acting(c));
    return c.redirect("/admin/settings/webhooks", 303);
  });

  return webhooks;
}
