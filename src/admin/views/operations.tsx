/**
 * /admin/operations. The live region (tiles + first page) is refreshed by an
 * htmx poller that exists only while live runs are on screen: each refresh
 * answers with a new poller, with or without its trigger, so polling stops
 * by itself once everything shown is terminal.
 */
import { DISPLAY_STATES, type DisplayStateKind } from "../../lifecycle";
import { displayStateOf } from "../../run-service";
import type { RunRecord } from "../../runs";
import type { OperationsPage, Tiles } from "../queries";
import { Badge, EmptyState, ProgressBar, RelTime, withQuery } from "./components";

export const RANGES = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 } as const;
export type RangeKey = keyof typeof RANGES;

export interface OperationsQuery {
  display?: DisplayStateKind;
  type?: string;
  range?: RangeKey;
}

const DISPLAY_LABELS: Record<DisplayStateKind, string> = {
  queued: "Queued",
  queued_overdue: "Queued · overdue",
  running: "Running",
  running_stale: "Running · no heartbeat",
  succeeded: "Succeeded",
  partially_succeeded: "Partially succeeded",
  failed: "Failed",
  failed_reconciled: "Failed · reconciled",
};

export function displayOf(run: RunRecord, now: number) {
  return displayStateOf(run, now);
}

function TilesView({ tiles }: { tiles: Tiles }) {
  return (
    <section id="tiles" class="tiles" aria-label="Summary" hx-swap-oob="true">
      <div class="tile tile--active">
        <span class="tile__value" data-tile="active">{tiles.active}</span>
        <span class="tile__label">Active</span>
      </div>
      <div class={`tile ${tiles.stale > 0 ? "tile--warn" : ""}`}>
        <span class="tile__value" data-tile="stale">{tiles.stale}</span>
        <span class="tile__label">Stale, awaiting reconciliation</span>
      </div>
      <div class={`tile ${tiles.reconciledFailures24h > 0 ? "tile--reconciled" : ""}`}>
        <span class="tile__value" data-tile="reconciled">{tiles.reconciledFailures24h}</span>
        <span class="tile__label">Reconciled failures · 24 h</span>
      </div>
      <div class={`tile ${tiles.failures24h > 0 ? "tile--bad" : ""}`}>
        <span class="tile__value" data-tile="failures">{tiles.failures24h}</span>
        <span class="tile__label">Failures · 24 h</span>
      </div>
    </section>
  );
}

export function RunRow({ run, now }: { run: RunRecord; now: number }) {
  const display = displayOf(run, now);
  return (
    <tr id={`row-${run.id}`} data-run-id={run.id} data-display={display.kind} class={display.live ? "row--live" : ""}>
      <td>
        <Badge display={display} />
        {run.status === "completed" && run.failureMessage ? (
          <div class="row-message" title={run.failureMessage} data-failure-message>
            {run.failureMessage.length > 90 ? `${run.failureMessage.slice(0, 89)}…` : run.failureMessage}
          </div>
        ) : null}
      </td>
      <td>
        <code>{run.type}</code>
      </td>
      <td>
        <ProgressBar progress={run.progress} />
      </td>
      <td class="num">
        {run.attempt}/{run.maxAttempts}
      </td>
      <td>
        <RelTime ms={run.startedAt} now={now} />
      </td>
      <td>
        <RelTime ms={run.lastHeartbeatAt} now={now} />
      </td>
      <td>
        <a href={`/admin/operations/${encodeURIComponent(run.id)}`} class="link">
          View run
        </a>
      </td>
    </tr>
  );
}

function pollUrl(q: OperationsQuery): string {
  return withQuery("/admin/operations/live", { display: q.display, type: q.type, range: q.range });
}

/** The poller: carries a trigger only while live runs are shown. */
export function Poller({ q, live }: { q: OperationsQuery; live: boolean }) {
  return live ? (
    <div id="poller" hx-get={pollUrl(q)} hx-trigger="every 2s" hx-swap="none" data-polling="on" hx-swap-oob="true"></div>
  ) : (
    <div id="poller" data-polling="off" hx-swap-oob="true"></div>
  );
}

export function FirstPage({ page, q, now }: { page: OperationsPage; q: OperationsQuery; now: number }) {
  return (
    <tbody id="page-first" hx-swap-oob="true">
      {page.runs.map((run) => (
        <RunRow run={run} now={now} />
      ))}
    </tbody>
  );
}

export function LoadMore({ q, cursor }: { q: OperationsQuery; cursor: string | null }) {
  if (!cursor) return <div id="load-more" hx-swap-oob="true"></div>;
  const url = withQuery("/admin/operations/more", { display: q.display, type: q.type, range: q.range, cursor });
  return (
    <div id="load-more" class="load-more" hx-swap-oob="true">
      <a class="button" href={withQuery("/admin/operations", { ...q, cursor })} hx-get={url} hx-target="#page-more" hx-swap="beforeend">
        Load more
      </a>
    </div>
  );
}

/** The answer to a poll: out-of-band swaps of tiles, first page and poller. */
export function LiveRegion({ page, q, now }: { page: OperationsPage; q: OperationsQuery; now: number }) {
  const live = page.runs.some((r) => r.status !== "completed");
  return (
    <>
      <TilesView tiles={page.tiles} />
      {/* A <tbody> cannot stand alone in a fragment: the browser's HTML parser drops it and its rows, so the
          table would never refresh. htmx also swaps out-of-band elements it finds inside a <template>. */}
      <template>
        <FirstPage page={page} q={q} now={now} />
      </template>
      <Poller q={q} live={live} />
    </>
  );
}

export function OperationsView({
  page,
  q,
  types,
  now,
}: {
  page: OperationsPage;
  q: OperationsQuery;
  types: string[];
  now: number;
}) {
  const live = page.runs.some((r) => r.status !== "completed");
  const filtered = Boolean(q.display || q.type || q.range);
  return (
    <>
      <div class="page-head">
        <h1>Operations</h1>
      </div>
      <TilesView tiles={page.tiles} />
      <form class="filters" method="get" action="/admin/operations">
        <label>
          State
          <select name="display">
            <option value="">Any</option>
            {DISPLAY_STATES.map((k) => (
              <option value={k} selected={q.display === k}>
                {DISPLAY_LABELS[k]}
              </option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select name="type">
            <option value="">Any</option>
            {types.map((t) => (
              <option value={t} selected={q.type === t}>
                {t}
              </option>
            ))}
          </select>
        </label>
        <label>
          Started within
          <select name="range">
            <option value="">Any time</option>
            {Object.keys(RANGES).map((r) => (
              <option value={r} selected={q.range === r}>
                {r}
              </option>
            ))}
          </select>
        </label>
        <button type="submit" class="button">
          Apply
        </button>
        {filtered ? (
          <a class="link" href="/admin/operations">
            Clear
          </a>
        ) : null}
      </form>
      {page.runs.length === 0 ? (
        filtered ? (
          <EmptyState title="No runs match these filters.">Widen the time range or clear the filters.</EmptyState>
        ) : (
          <EmptyState title="No runs yet in this workspace.">
            Start one with <code>POST /api/v1/runs</code> and a workspace API token; it appears here as soon as it is queued.
          </EmptyState>
        )
      ) : (
        <table class="runs">
          <thead>
            <tr>
              <th scope="col">State</th>
              <th scope="col">Type</th>
              <th scope="col">Progress</th>
              <th scope="col">Attempt</th>
              <th scope="col">Started</th>
              <th scope="col">Last heartbeat</th>
              <th scope="col">
                <span class="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <FirstPage page={page} q={q} now={now} />
          <tbody id="page-more"></tbody>
        </table>
      )}
      <LoadMore q={q} cursor={page.nextCursor} />
      <Poller q={q} live={live} />
    </>
  );
}

/** Rows appended by "Load more", plus the next "Load more" out of band. */
export function MoreRows({ page, q, now }: { page: OperationsPage; q: OperationsQuery; now: number }) {
  return (
    <>
      {page.runs.map((run) => (
        <RunRow run={run} now={now} />
      ))}
      <LoadMore q={q} cursor={page.nextCursor} />
    </>
  );
}
