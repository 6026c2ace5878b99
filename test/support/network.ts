/**
 * Outbound `fetch` mocking for the Workers tests, with Mock Service Worker:
 * what Cloudflare's Vitest integration recommends
 * (https://developers.cloudflare.com/workers/testing/vitest-integration/mock-outbound-requests/).
 * That page installs `@msw/cloudflare`, whose `setupNetwork()` is this:
 * msw's network over a fetch interceptor. It is not on the npm registry yet,
 * so the few lines are here, for fetch only (no WebSocket mocking needed).
 *
 * A request no handler matches is an error, never a real network call.
 * Use: `network.use(http.get(url, resolver))` inside a test; the file's
 * `afterEach` resets handlers (see `useNetwork`).
 */
import { FetchInterceptor } from "@mswjs/interceptors/fetch";
import type { RequestHandler } from "msw";
import { defineNetwork, InterceptorSource } from "msw/experimental";
import { afterAll, afterEach, beforeAll } from "vitest";

export function setupNetwork() {
  return defineNetwork({
    sources: [new InterceptorSource({ interceptors: [new FetchInterceptor()] })],
    // msw logs every mocked request in a browser-like runtime (workerd is not Node to it).
    context: { quiet: true },
    onUnhandledFrame: "error",
  });
}

/** Enable a mocked network for the calling test file; returns `use` for the tests' handlers. */
export function useNetwork(): { use: (...handlers: RequestHandler[]) => void } {
  const network = setupNetwork();
  beforeAll(() => network.enable());
  afterEach(() => network.resetHandlers());
  afterAll(() => network.disable());
  return { use: (...handlers) => network.use(...handlers) };
}
