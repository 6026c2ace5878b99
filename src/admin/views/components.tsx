/** Small view pieces. Every dynamic string goes through JSX, which escapes it; nothing here uses raw HTML. */
import type { Child } from "hono/jsx";
import { formatDuration, type DisplayState, type Progress } from "../../lifecycle";

const ICONS: Record<DisplayState["kind"], string> = {
  queued: "◷",
  retrying: "↻",
  queued_overdue: "⚠",
  running: "●",
  running_stale: "⚠",
  succeeded: "✓",
  partially_succeeded: "◐",
  failed: "✕",
  failed_reconciled: "⊘",
  cancelling: "◌",
  cancelled: "⊗",
};

/** The display state as a badge: each kind has its own look; stale kinds never share the live ones'. */
export function Badge({ display }: { display: DisplayState }) {
  return (
    <span class={`badge badge--${display.kind}`} data-display={display.kind}>
      <span aria-hidden="true">{ICONS[display.kind]}</span> {display.label}
    </span>
  );
}

export function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** "2026-11-30 09:42:42.123 UTC": an absolute time an operator can read and compare with logs. */
export function humanTime(ms: number): string {
  return iso(ms).replace("T", " ").replace("Z", " UTC");
}

/** A relative time with the absolute one on hover. */
export function RelTime({ ms, now }: { ms: number | null; now: number }) {
  if (ms === null) return <span class="muted">—</span>;
  const delta = now - ms;
  const text = delta >= 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`;
  return (
    <time datetime={iso(ms)} title={humanTime(ms)}>
      {text}
    </time>
  );
}

/**
 * A duration in the largest unit that states it exactly: 900000 → "15 min",
 * 90000 → "90 s", 1500 → "1.5 s", 250 → "250 ms". For policy numbers and
 * thresholds, where the coarse `formatDuration` would round 90 s down to 1 min.
 */
export function exactDuration(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms >= 1_000 && ms % 100 === 0) return `${ms / 1_000} s`;
  return `${ms} ms`;
}

/** An absolute time, as a <time> element. */
export function AbsTime({ ms }: { ms: number }) {
  return <time datetime={iso(ms)}>{humanTime(ms)}</time>;
}

/**
 * The part of a run id that tells runs apart at a glance: ids are ULIDs, whose
 * first 10 characters are the creation time (shared by runs of the same
 * moment), so the tail is shown: "…7KQ2M9XD".
 */
export function shortRunId(id: string): string {
  return `…${id.slice(-8)}`;
}

/** A button that copies `value` to the clipboard (public/admin.js); its name says what it copies. */
export function CopyButton({ value, what }: { value: string; what: string }) {
  return (
    <button type="button" class="copy" data-copy={value} aria-label={`Copy ${what}`} title={`Copy ${what}`}>
      Copy
    </button>
  );
}

export function ProgressBar({ progress }: { progress: Progress }) {
  const total = Math.max(progress.total, 0);
  const pct = total > 0 ? Math.min(100, Math.round((progress.processed / total) * 100)) : 0;
  return (
    <div class="progress" data-processed={String(progress.processed)} data-total={String(total)}>
      <progress max={total > 0 ? String(total) : "1"} value={String(total > 0 ? progress.processed : 0)} aria-label={`${pct}% processed`} />
      <span class="progress__counts">
        {progress.processed}/{total}
        {progress.failed > 0 ? <span class="progress__failed"> · {progress.failed} failed</span> : null}
      </span>
    </div>
  );
}

export function EmptyState({ title, children }: { title: string; children?: Child }) {
  return (
    <div class="empty">
      <p class="empty__title">{title}</p>
      {children ? <p class="empty__hint">{children}</p> : null}
    </div>
  );
}

/** Build a URL with only the non-empty params. */
export function withQuery(path: string, params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/** A labelled filter <select>: "Any" (the empty value) first, then each option, the current one selected. */
export function FilterSelect({
  name,
  label,
  any = "Any",
  options,
  selected,
}: {
  name: string;
  label: string;
  any?: string;
  options: ReadonlyArray<string | readonly [value: string, text: string]>;
  selected: string | undefined;
}) {
  return (
    <label>
      {label}
      <select name={name}>
        <option value="">{any}</option>
        {options.map((o) => {
          const [value, text] = typeof o === "string" ? [o, o] : o;
          return (
            <option value={value} selected={selected === value}>
              {text}
            </option>
          );
        })}
      </select>
    </label>
  );
}

/** A filter form's Apply button, and a way back to everything once filtered. */
export function FilterActions({ filtered, clearHref }: { filtered: boolean; clearHref: string }) {
  return (
    <>
      <button type="submit" class="button">
        Apply
      </button>
      {filtered ? (
        <a class="link" href={clearHref}>
          Clear
        </a>
      ) : null}
    </>
  );
}
