/**
 * What `npm start` shows of wrangler, and when: wrangler's calls home switched
 * off, the migration table once, and readiness judged by the server answering
 * rather than by wrangler having been started.
 */

/**
 * wrangler's calls home, off: usage metrics (WRANGLER_SEND_METRICS), crash
 * reports (WRANGLER_SEND_ERROR_REPORTS) and miniflare's fetch of the
 * `Request.cf` object from workers.cloudflare.com (CLOUDFLARE_CF_FETCH_ENABLED;
 * without it a placeholder `cf` is used, and offline the fetch logs an error
 * and a stack on every start). Sources: wrangler's telemetry docs
 * (https://developers.cloudflare.com/workers/wrangler/system-environment-variables/)
 * and miniflare's CF_FETCH_ENABLED_ENV_VAR. Nothing local may call
 * Cloudflare's servers.
 */
export const OFFLINE_WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_SEND_ERROR_REPORTS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
} as const;

/** `env` with OFFLINE_WRANGLER_ENV underneath: a value the developer set explicitly wins. */
export function offlineWranglerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...OFFLINE_WRANGLER_ENV, ...env };
}

/**
 * The last box-drawn table in `wrangler d1 migrations apply` output: the
 * status of every migration after the last one was applied. (wrangler
 * reprints the whole table after each migration, so n migrations make n + 1
 * tables.) Null when the output has none, e.g. "No migrations to apply".
 */
export function lastTable(output: string): string | null {
  const lines = output.split(/\r?\n/);
  const end = lines.findLastIndex((l) => l.trimStart().startsWith("└"));
  if (end < 0) return null;
  const start = lines.slice(0, end).findLastIndex((l) => l.trimStart().startsWith("┌"));
  return start < 0 ? null : lines.slice(start, end + 1).join("\n");
}

/**
 * Resolves once `url` answers an HTTP request with any status (the server is
 * listening and the Worker loaded), or with false as soon as `stillRunning()`
 * says the server's process is gone. Asks every `intervalMs`; a refused or
 * hung connection only means "not yet", each attempt bounded by
 * `attemptTimeoutMs`. No overall deadline: the caller's process owns that.
 */
export async function whenAnswering(
  url: string,
  stillRunning: () => boolean,
  { intervalMs = 250, attemptTimeoutMs = 5_000 }: { intervalMs?: number; attemptTimeoutMs?: number } = {},
): Promise<boolean> {
  for (;;) {
    if (!stillRunning()) return false;
    const res = await fetch(url, { signal: AbortSignal.timeout(attemptTimeoutMs) }).catch(() => null);
    if (res) {
      await res.body?.cancel();
      return true;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
