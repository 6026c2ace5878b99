/**
 * /admin/audit-log: events newest first with filters. Choosing one opens a
 * slide-over fetched by htmx and pushed to the URL (`?event=`), so it is
 * deep-linkable and the back button closes it; public/admin.js moves focus
 * into it and back, and closes it on Esc.
 */
import { ACTOR_KINDS, type AuditEvent } from "../../runs";
import { RUN_AUDIT_ACTIONS } from "../../lifecycle";
import { EmptyState, FilterActions, FilterSelect, iso, RelTime, withQuery } from "./components";

export interface AuditQuery {
  action?: string;
  actor?: (typeof ACTOR_KINDS)[number];
  run?: string;
}

export const AUDIT_ACTIONS = [...RUN_AUDIT_ACTIONS, "queue.message_malformed"] as const;

function eventUrl(q: AuditQuery, id: string): string {
  return withQuery("/admin/audit-log", { ...q, event: id });
}

export function EventRow({ e, q, now }: { e: AuditEvent; q: AuditQuery; now: number }) {
  return (
    <tr data-event-id={e.id}>
      <td>
        <RelTime ms={e.createdAt} now={now} />
      </td>
      <td>
        <a
          href={eventUrl(q, e.id)}
          class="link event-link"
          hx-get={`/admin/audit-log/events/${encodeURIComponent(e.id)}`}
          hx-target="#slideover"
          hx-swap="innerHTML"
          hx-push-url={eventUrl(q, e.id)}
          data-event-id={e.id}
        >
          {e.action}
        </a>
      </td>
      <td>
        <code>{e.actor}</code>
      </td>
      <td>
        {e.subjectType === "run" ? (
          <a class="link" href={`/admin/operations/${encodeURIComponent(e.subjectId)}`}>
            <code>{e.subjectId}</code>
          </a>
        ) : (
          <code>{e.subjectId}</code>
        )}
      </td>
    </tr>
  );
}

export function EventDetail({ e, q }: { e: AuditEvent; q: AuditQuery }) {
  return (
    <>
      <div class="slideover__backdrop" data-close="backdrop"></div>
      <aside class="slideover" role="dialog" aria-modal="true" aria-labelledby="slideover-title" tabindex={-1} data-event-id={e.id}>
        <header class="slideover__head">
          <h2 id="slideover-title">{e.action}</h2>
          <a class="button button--small button--ghost" href={withQuery("/admin/audit-log", { ...q })} data-close="button">
            Close
          </a>
        </header>
        <dl class="facts">
          <dt>When</dt>
          <dd>
            <time datetime={iso(e.createdAt)}>{iso(e.createdAt).replace("T", " ").replace("Z", " UTC")}</time>
          </dd>
          <dt>Actor</dt>
          <dd>
            <code>{e.actor}</code>
          </dd>
          <dt>Action</dt>
          <dd>
            <code>{e.action}</code>
          </dd>
          <dt>Subject</dt>
          <dd>
            {e.subjectType === "run" ? (
              <a class="link" href={`/admin/operations/${encodeURIComponent(e.subjectId)}`}>
                <code>{e.subjectId}</code>
              </a>
            ) : (
              <code>
                {e.subjectType}:{e.subjectId}
              </code>
            )}
          </dd>
          <dt>Event id</dt>
          <dd>
            <code>{e.id}</code>
          </dd>
        </dl>
        <h3>Metadata</h3>
        <pre class="json" data-metadata>
          {JSON.stringify(e.metadata, null, 2)}
        </pre>
      </aside>
    </>
  );
}

export function AuditView({
  events,
  nextCursor,
  q,
  open,
  now,
}: {
  events: AuditEvent[];
  nextCursor: string | null;
  q: AuditQuery;
  open: AuditEvent | null;
  now: number;
}) {
  const filtered = Boolean(q.action || q.actor || q.run);
  return (
    <>
      <div class="page-head">
        <h1>Audit log</h1>
      </div>
      <form class="filters" method="get" action="/admin/audit-log">
        <FilterSelect name="action" label="Action" options={AUDIT_ACTIONS} selected={q.action} />
        <FilterSelect name="actor" label="Actor" options={ACTOR_KINDS} selected={q.actor} />
        <label>
          Run
          <input type="text" name="run" value={q.run ?? ""} placeholder="run_…" size={30} />
        </label>
        <FilterActions filtered={filtered} clearHref="/admin/audit-log" />
      </form>
      {events.length === 0 ? (
        <EmptyState title={filtered ? "No events match these filters." : "No events yet."}>
          {filtered ? "Clear the filters to see every event." : "Events appear as runs are queued, started and finished."}
        </EmptyState>
      ) : (
        <table class="events">
          <thead>
            <tr>
              <th scope="col">When</th>
              <th scope="col">Action</th>
              <th scope="col">Actor</th>
              <th scope="col">Subject</th>
            </tr>
          </thead>
          <tbody id="events-rows">
            {events.map((e) => (
              <EventRow e={e} q={q} now={now} />
            ))}
          </tbody>
        </table>
      )}
      {nextCursor ? (
        <div class="load-more">
          <a class="button" href={withQuery("/admin/audit-log", { ...q, cursor: nextCursor })}>
            Older events
          </a>
        </div>
      ) : null}
      <div id="slideover" class="slideover-host">
        {open ? <EventDetail e={open} q={q} /> : null}
      </div>
    </>
  );
}
