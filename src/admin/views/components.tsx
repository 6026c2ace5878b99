/** Small view pieces. Every dynamic string goes through JSX, which escapes it; nothing here uses raw HTML. */
import type { Child } from "hono/jsx";
import { formatDuration, type DisplayState, type Progress } from "../../lifecycle";

const ICONS: Record<DisplayState["kind"], string> = {
  queued: "◷",
  queued_overdue: "⚠",
  running: "●",
  running_stale: "⚠",
  succeeded: "✓",
  partially_succeeded: "◐",
  failed: "✕",
  failed_reconciled: "⊘",
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

/** A relative time with the absolute one on hover. */
export function RelTime({ ms, now }: { ms: number | null; now: number }) {
  if (ms === null) return <span class="muted">—</span>;
  const delta = now - ms;
  const text = delta >= 0 ? `${formatDuration(delta)} ago` : `in ${formatDuration(-delta)}`;
  return (
    <time datetime={iso(ms)} title={iso(ms).replace("T", " ").replace("Z", " UTC")}>
      {text}
    </time>
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
