/**
 * "Known path, wrong method" for the API: the methods that a path's routes
 * answer, read from the app's own route table, so a new route is covered
 * without a list to keep in step. Used by the app's not-found handler to
 * answer 405 with `Allow` (RFC 9110 §15.5.6) instead of 404.
 */
import type { RouterRoute } from "hono/types";

/** `/api/v1/runs/:id` → a regex for whole paths; segments other than `:param` match literally. */
function pathPattern(path: string): RegExp {
  const source = path
    .split("/")
    .map((seg) => (seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}$`);
}

/** The methods routes answer at `path` (HEAD wherever GET is: Hono serves HEAD from GET), sorted; empty if the path is unknown. */
export function allowedMethods(routes: readonly RouterRoute[], path: string): string[] {
  const methods = new Set<string>();
  for (const r of routes) {
    // "ALL" routes are middleware (auth, headers), which exist for any path under them.
    if (r.method === "ALL" || r.path.includes("*")) continue;
    if (pathPattern(r.path).test(path)) methods.add(r.method);
  }
  if (methods.has("GET")) methods.add("HEAD");
  return [...methods].sort();
}
