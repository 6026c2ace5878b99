import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, vi } from "vitest";

// A test that stopped the clock (fixtures.ts stopClock) never leaves it stopped for the next.
afterEach(() => {
  vi.useRealTimers();
});

// Storage is isolated per test file; each file starts from the migrated schema.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
