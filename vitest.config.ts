import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Three projects: "workers" runs inside workerd (bindings, D1, Durable Objects);
// "node" runs in plain Node for tests that must spawn processes (the CLI
// scripts, wrangler), which the Workers runtime cannot do; "browser" drives
// Chromium against a real `wrangler dev` (started once by its global setup).
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: {
                bindings: { TEST_MIGRATIONS: migrations },
                // The trackers send every dispatch themselves; here their producer
                // binding points at a queue nobody consumes, so a test delivers each
                // message by hand and nothing races it (test/support/execution.ts).
                // Real batches and delays are tested through wrangler dev (test/node/batches).
                // Webhook tries likewise: their tests deliver each message by hand with a fake fetch.
                queueProducers: {
                  OPERATIONS_QUEUE: { queueName: "operations-unconsumed" },
                  WEBHOOKS_QUEUE: { queueName: "webhooks-unconsumed" },
                },
              },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/**/*.test.ts"],
            exclude: ["test/node/**", "test/browser/**", "**/node_modules/**"],
            setupFiles: ["./test/setup.ts"],
            // vitest's 5 s default is a bet on the machine: a test that
            // waits on real D1, queues and Durable Objects takes a multiple
            // of its usual time on a loaded 2-core box. A deadline, not a goal.
            testTimeout: 60_000,
            hookTimeout: 60_000,
          },
        },
        {
          test: {
            name: "node",
            environment: "node",
            include: ["test/node/**/*.test.ts"],
            // Each test spawns tsx and wrangler's config reader: a few seconds
            // alone, far more beside the workers project on a loaded CI box.
            testTimeout: 120_000,
          },
        },
        {
          test: {
            name: "browser",
            environment: "node",
            include: ["test/browser/**/*.test.ts"],
            globalSetup: ["./test/browser/support/global-setup.ts"],
            // One file at a time against the one wrangler dev, and in a group of its
            // own, so never beside the other projects' files: their load on a small
            // CI box would bend the timings these tests watch (heartbeat freshness,
            // progress flushes, polling).
            fileParallelism: false,
            sequence: { groupOrder: 1 },
            // Failure deadlines only, above the tests' own (a run finishing,
            // live rows read as live): a busy machine is slow, not wrong.
            testTimeout: 240_000,
            hookTimeout: 240_000,
          },
        },
      ],
    },
  };
});
