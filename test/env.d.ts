declare namespace Cloudflare {
  interface Env {
    /** Migrations read in Node by vitest.config.ts, applied per test file by test/setup.ts. */
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
  }
}
