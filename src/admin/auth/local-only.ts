/**
 * Dev sign-in answers only requests for a local host. Environment variables
 * alone cannot turn it on in a deploy: a deployed Worker is reached under its
 * public hostname (Cloudflare routes a request to a Worker by that hostname,
 * so a client cannot reach it as "localhost"), and every admin request there
 * is refused, the sign-in page included, whatever DEV_SIGN_IN says.
 */
import type { MiddlewareHandler } from "hono";
import { AdminHttpError } from "./errors";
import { authMode, type AuthVars } from "./mode";

/** localhost, *.localhost (RFC 6761 §6.3), 127.0.0.0/8 and [::1]. */
export function isLocalHost(hostname: string): boolean {
  const h = hostname.toLowerCase();
  return h === "localhost" || h.endsWith(".localhost") || /^127(\.\d{1,3}){3}$/.test(h) || h === "[::1]";
}

export function devSignInOnlyLocally(): MiddlewareHandler<{ Bindings: AuthVars }> {
  return async (c, next) => {
    if (authMode(c.env).kind === "dev" && !isLocalHost(new URL(c.req.url).hostname)) {
      throw new AdminHttpError(
        403,
        "Dev sign-in is local only",
        "This admin runs with DEV_SIGN_IN, which only answers on localhost. A deployed admin signs in through Cloudflare Access.",
      );
    }
    await next();
  };
}
