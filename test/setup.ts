import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, vi } from "vitest";
import { installLocalBuild } from "../src/local";

// The local build (src/index.local.ts, the project's `main` here) registers
// demo.work and the fault hooks; tests that import modules directly see the
// same registry whether or not the entry was loaded first.
installLocalBuild();

// A test that stopped the clock (fixtures.ts stopClock) never leaves it stopped for the next.
afterEach(() => {
  vi.useRealTimers();
});

// Storage is isolated per test file; each file starts from the migrated schema.
await applyD1Migrations(env.DB, env.TEST_MIGRATIONS);
