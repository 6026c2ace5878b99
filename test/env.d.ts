declare namespace Cloudflare {
  interface Env {
    /** Migrations read in Node by vitest.config.ts, applied per test file by test/setup.ts. */
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** examples/caller-worker, run beside this Worker with its OPLIFE binding pointed here (vitest.config.ts). */
    CALLER: Fetcher;
  }
}
