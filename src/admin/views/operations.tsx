/**
 * /admin/operations. The live region (tiles + first page) is refreshed by an
 * htmx poller that exists only while live runs are on screen: each refresh
 * answers with a new poller, with or without its trigger, so polling stops
 * by itself once everything shown is terminal. A poll refreshes only the live
 * rows unless something else changed (src/admin/live.ts), and slows down
 * while nothing does. Tiles and rows are morphed in
 * place (idiomorph's htmx extension), so focus, selection and scroll survive
 * a refresh; public/admin.js announces state changes in the polite live region.
 */
import { DISPLAY_STATES, formatDuration } from "../../lifecycle";
import type { RunRecord } from "../../runs";
import { hourStart } from "../../runs";
import { DISPLAY_GROUPS, type DisplayFilter, type OperationsPage, type Tiles } from "../queries";
import { pollDelaySeconds, pollStateParams, type PollState } from "../live";
import { LIVE_SCAN } from "../tiles";
import { CopyButton, EmptyState, FilterActions, FilterSelect, ProgressBar, RelTime, shortRunId, withQuery } from "./components";
import { DISPLAY_LABELS, displayOf, RunState } from "./state";

export const RANGES = { "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000, "30d": 30 * 86_400_000 } as const;
export type RangeKey = keyof typeof RANGES;

/**
 * Where a "created within" range starts. Ranges of a day or more start at the
 * top of an hour, so `24h` lists exactly the runs the failure tiles count
 * (hourly counters, src/admin/tiles.ts failureWindowStart): up to an hour more
 * than 24 h, never less.
 */
export function rangeSince(range: RangeKey, now: number): number {
  const ms = RANGES[range];
  return ms >= 86_400_000 ? hourStart(now - ms) : now - ms;
}

export interface OperationsQuery {
  display?: DisplayFilter;
  type?: string;
  range?: RangeKey;
  /** A full run id: a primary-key lookup in the current workspace. */
  run?: string;
}

const GROUP_LABELS: Record<keyof typeof DISPLAY_GROUPS, string> = {
  active: "Active (queued, retrying, running, cancelling)",
  stale: "Stale (overdue, no heartbeat)",
  failures: "Failed (all)",
};

type Count = "active" | "retrying" | "stale" | "failures24h" | "reconciledFailures24h";

interface TileSpec {
  key: Count;
  /** A live count: a lower bound when the tiles read fewer live runs than exist (`liveCapped`). */
  live: boolean;
  /** data-tile, kept stable for tests and scripts. */
  name: string;
  label: string;
  /** The filter that lists exactly the runs the tile counts. */
  href: string;
  alarm: string;
}

const TILE_SPECS: TileSpec[] = [
  { key: "active", name: "active", live: true, label: "Active", href: withQuery("/admin/operations", { display: "active" }), alarm: "" },
  { key: "retrying", name: "retrying", live: true, label: "Retrying", href: withQuery("/admin/operations", { display: "retrying" }), alarm: "tile--retrying" },
  {
    key: "stale",
    live: true,
    name: "stale",
    label: "Stale, awaiting reconciliation",
    href: withQuery("/admin/operations", { display: "stale" }),
    alarm: "tile--warn",
  },
  {
    key: "reconciledFailures24h",
    live: false,
    name: "reconciled",
    label: "Reconciled failures · created in 24 h",
    href: withQuery("/admin/operations", { display: "failed_reconciled", range: "24h" }),
    alarm: "tile--reconciled",
  },
  {
    key: "failures24h",
    live: false,
    name: "failures",
    label: "Failures · created in 24 h",
    href: withQuery("/admin/operations", { display: "failures", range: "24h" }),
    alarm: "tile--bad",
  },
];

/** Summary tiles; each links to the filter that lists the runs it counts. */
function TilesView({ tiles }: { tiles: Tiles }) {
  return (
    <section id="tiles" class="tiles" aria-label="Summary" hx-swap-oob="morph">
      {TILE_SPECS.map((t) => {
        const atLeast = t.live && tiles.liveCapped;
        return (
          <a
            class={`tile ${tiles[t.key] > 0 ? t.alarm : ""}`}
            href={t.href}
            id={`tile-${t.name}`}
            title={atLeast ? `At least ${tiles[t.key]}: counted among the oldest ${LIVE_SCAN} live runs` : undefined}
          >
            <span class="tile__value" data-tile={t.name} data-at-least={atLeast ? "" : undefined}>
              {tiles[t.key]}
              {atLeast ? "+" : ""}
            </span>
            <span class="tile__label">{t.label}</span>
          </a>
        );
      })}
    </section>
  );
}

/** How long it took (terminal), has been running, or has been waiting. */
function DurationOrAge({ run, now }: { run: RunRecord; now: number }) {
  if (run.completedAt !== null) {
    const ms = run.completedAt - (run.startedAt ?? run.createdAt);
    return <span title={`${ms} ms from ${run.startedAt !== null ? "start" : "creation"} to end`}>took {formatDuration(ms)}</span>;
  }
  if (run.status === "running" && run.startedAt !== null) return <span>running {formatDuration(now - run.startedAt)}</span>;
  return <span>waiting {formatDuration(now - run.createdAt)}</span>;
}

function Heartbeat({ run, now }: { run: RunRecord; now: number }) {
  if (run.lastHeartbeatAt !== null) return <RelTime ms={run.lastHeartbeatAt} now={now} />;
  return <span class="muted">{run.attempt === 0 ? "not started yet" : "none"}</span>;
}

export function RunRow({ run, now, showDiagnostics, oob }: { run: RunRecord; now: number; showDiagnostics: boolean; oob?: boolean }) {
  const display = displayOf(run, now);
  const short = shortRunId(run.id);
  return (
    <tr
      id={`row-${run.id}`}
      data-run-id={run.id}
      data-display={display.kind}
      data-label={display.label}
      class={display.live ? "row--live" : ""}
      hx-swap-oob={oob ? "morph" : undefined}
    >
      <th scope="row" class="run-cell">
        <a href={`/admin/operations/${encodeURIComponent(run.id)}`} class="link run-link" id={`link-${run.id}`} aria-label={`Run ${run.id}`} title={run.id}>
          <code>{short}</code>
        </a>
        <CopyButton value={run.id} what={`run id ${run.id}`} />
      </th>
      <td>
        <code class="run-type">{run.type}</code>
      </td>
      <td>
        <RunState run={run} display={display} now={now} showDiagnostics={showDiagnostics} compact />
      </td>
      <td class="num">
        {run.attempt}/{run.maxAttempts}
      </td>
      <td>
        <ProgressBar progress={run.progress} />
      </td>
      <td>
        <RelTime ms={run.createdAt} now={now} />
      </td>
      <td>
        <DurationOrAge run={run} now={now} />
      </td>
      <td>
        <Heartbeat run={run} now={now} />
      </td>
    </tr>
  );
}

/** Where the next poll goes: the filters, what this answer saw (src/admin/live.ts) and the D1 session's bookmark. */
function pollUrl(q: OperationsQuery, poll: LivePoll): string {
  return withQuery("/admin/operations/live", {
    display: q.display,
    type: q.type,
    range: q.range,
    run: q.run,
    ...pollStateParams(poll.state),
    b: poll.bookmark ?? undefined,
  });
}

/** The next poll: what the answer saw, and the bookmark its reads ended at. */
export interface LivePoll {
  state: PollState;
  bookmark: string | null;
}

/**
 * The poller: carries a trigger only while live runs are shown, at an
 * interval that backs off while polls find nothing new (pollDelaySeconds).
 */
export function Poller({ q, live, poll }: { q: OperationsQuery; live: boolean; poll: LivePoll }) {
  return live ? (
    <div
      id="poller"
      hx-get={pollUrl(q, poll)}
      hx-trigger={`every ${pollDelaySeconds(poll.state.idle)}s`}
      hx-swap="none"
      data-polling="on"
      data-poll-seconds={pollDelaySeconds(poll.state.idle)}
      hx-swap-oob="true"
    ></div>
  ) : (
    <div id="poller" data-polling="off" hx-swap-oob="true"></div>
  );
}

export function FirstPage({ page, now, showDiagnostics }: { page: OperationsPage; now: number; showDiagnostics: boolean }) {
  return (
    <tbody id="page-first" hx-swap-oob="morph">
      {page.runs.map((run) => (
        <RunRow run={run} now={now} showDiagnostics={showDiagnostics} />
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

const isLive = (page: OperationsPage) => page.runs.some((r) => r.status !== "completed");

/** The answer to a poll that refreshes everything: out-of-band swaps of tiles, first page and poller. */
export function LiveRegion({
  page,
  q,
  now,
  showDiagnostics,
  poll,
}: {
  page: OperationsPage;
  q: OperationsQuery;
  now: number;
  showDiagnostics: boolean;
  poll: LivePoll;
}) {
  return (
    <>
      <TilesView tiles={page.tiles} />
      {/* A <tbody> cannot stand alone in a fragment: the browser's HTML parser drops it and its rows, so the
          table would never refresh. htmx also swaps out-of-band elements it finds inside a <template>. */}
      <template>
        <FirstPage page={page} now={now} showDiagnostics={showDiagnostics} />
      </template>
      <Poller q={q} live={isLive(page)} poll={poll} />
    </>
  );
}

/** The answer to a poll when nothing but the live rows can have changed: each row morphed in place by id. */
export function LiveRows({ runs, q, now, showDiagnostics, poll }: { runs: RunRecord[]; q: OperationsQuery; now: number; showDiagnostics: boolean; poll: LivePoll }) {
  return (
    <>
      {/* <tr> needs a table context to survive parsing; htmx swaps out-of-band elements inside a <template>. */}
      <template>
        {runs.map((run) => (
          <RunRow run={run} now={now} showDiagnostics={showDiagnostics} oob />
        ))}
      </template>
      <Poller q={q} live={poll.state.live.length > 0} poll={poll} />
    </>
  );
}

function Filters({ q, types, searchError }: { q: OperationsQuery; types: string[]; searchError: string | null }) {
  const filtered = Boolean(q.display || q.type || q.range || q.run);
  return (
    <form class="filters" method="get" action="/admin/operations" role="search" aria-label="Filter runs">
      <label>
        Run id
        <input
          type="search"
          name="run"
          value={q.run ?? ""}
          placeholder="run_…"
          size={32}
          spellcheck={false}
          autocomplete="off"
          aria-invalid={searchError ? "true" : undefined}
          aria-describedby={searchError ? "run-search-error" : undefined}
        />
      </label>
      <label>
        State
        <select name="display">
          <option value="">Any</option>
          <optgroup label="Groups">
            {(Object.keys(DISPLAY_GROUPS) as Array<keyof typeof DISPLAY_GROUPS>).map((g) => (
              <option value={g} selected={q.display === g}>
                {GROUP_LABELS[g]}
              </option>
            ))}
          </optgroup>
          <optgroup label="States">
            {DISPLAY_STATES.map((k) => (
              <option value={k} selected={q.display === k}>
                {DISPLAY_LABELS[k]}
              </option>
            ))}
          </optgroup>
        </select>
      </label>
      <FilterSelect name="type" label="Type" options={types} selected={q.type} />
      <FilterSelect name="range" label="Created within" any="Any time" options={Object.keys(RANGES)} selected={q.range} />
      <FilterActions filtered={filtered} clearHref="/admin/operations" />
      {searchError ? (
        <p id="run-search-error" class="field-error" role="alert">
          {searchError}
        </p>
      ) : null}
    </form>
  );
}

export function OperationsView({
  page,
  q,
  types,
  now,
  showDiagnostics,
  searchError,
  poll,
}: {
  poll: LivePoll;
  page: OperationsPage;
  q: OperationsQuery;
  types: string[];
  now: number;
  showDiagnostics: boolean;
  searchError: string | null;
}) {
  const filtered = Boolean(q.display || q.type || q.range || q.run);
  return (
    <>
      <div class="page-head">
        <h1>Operations</h1>
      </div>
      <TilesView tiles={page.tiles} />
      <Filters q={q} types={types} searchError={searchError} />
      {page.runs.length === 0 ? (
        q.run ? (
          <EmptyState title="No run with this id in this workspace.">Check the id, or switch to the workspace that owns it.</EmptyState>
        ) : filtered ? (
          <EmptyState title="No runs match these filters.">Widen the time range or clear the filters.</EmptyState>
        ) : (
          <EmptyState title="No runs yet in this workspace.">
            Start one with <code>POST /api/v1/runs</code> and a workspace API token; it appears here as soon as it is queued.
          </EmptyState>
        )
      ) : (
        <table class="runs">
          <caption class="sr-only">Runs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Run</th>
              <th scope="col">Type</th>
              <th scope="col">State</th>
              <th scope="col">Attempt</th>
              <th scope="col">Progress</th>
              <th scope="col">Created</th>
              <th scope="col">Duration / age</th>
              <th scope="col">Last heartbeat</th>
            </tr>
          </thead>
          <FirstPage page={page} now={now} showDiagnostics={showDiagnostics} />
          <tbody id="page-more"></tbody>
        </table>
      )}
      <LoadMore q={q} cursor={page.nextCursor} />
      <Poller q={q} live={isLive(page)} poll={poll} />
    </>
  );
}

/** Rows appended by "Load more", plus the next "Load more" out of band. */
export function MoreRows({ page, q, now, showDiagnostics }: { page: OperationsPage; q: OperationsQuery; now: number; showDiagnostics: boolean }) {
  return (
    <>
      {page.runs.map((run) => (
        <RunRow run={run} now={now} showDiagnostics={showDiagnostics} />
      ))}
      <LoadMore q={q} cursor={page.nextCursor} />
    </>
  );
}
