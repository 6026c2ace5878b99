import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { build } from "esbuild";
import { defineConfig } from "vitest/config";
import { unstable_readConfig } from "wrangler";
import { CALLER_TOKEN } from "./test/rpc/caller-token";

/** The runner's name for the Worker under test (the plugin's `vitest-plugin-runner-<project>`): where a binding to "oplife" goes. */
const RUNNER = "vitest-plugin-runner-workers";

/**
 * examples/caller-worker as a second Worker beside oplife: bundled from its
 * TypeScript with esbuild (Miniflare runs JavaScript), with its service
 * bindings read from its own wrangler.toml by wrangler's reader, and its
 * binding to "oplife" pointed at the Worker under test.
 */
async function callerWorker() {
  const dir = "./examples/caller-worker";
  const config = unstable_readConfig({ config: `${dir}/wrangler.toml` });
  const bundle = await build({ entryPoints: [`${dir}/src/index.ts`], bundle: true, format: "esm", write: false, platform: "neutral", external: ["cloudflare:*"] });
  return {
    name: config.name,
    modules: [{ type: "ESModule" as const, path: "index.mjs", contents: bundle.outputFiles[0]!.text }],
    compatibilityDate: config.compatibility_date,
    bindings: { OPLIFE_TOKEN: CALLER_TOKEN },
    serviceBindings: Object.fromEntries(
      (config.services ?? []).map((s: { binding: string; service: string; entrypoint?: string }) => [s.binding, { name: s.service === "oplife" ? RUNNER : s.service, ...(s.entrypoint ? { entrypoint: s.entrypoint } : {}) }]),
    ),
  };
}

// Three projects: "workers" runs inside workerd (bindings, D1, Durable Objects);
// "node" runs in plain Node for tests that must spawn processes (the CLI
// scripts, wrangler), which the Workers runtime cannot do; "browser" drives
// Chromium against a real `wrangler dev` (started once by its global setup).
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  const caller = await callerWorker();
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              // The local build's entry: production's Worker plus demo.work and the
              // fault hooks (src/index.local.ts); `wrangler deploy` bundles src/index.ts.
              main: "./src/index.local.ts",
              miniflare: {
                bindings: { TEST_MIGRATIONS: migrations },
                // A second Worker that calls this one over RPC (test/rpc/rpc.caller-worker.test.ts).
                serviceBindings: { CALLER: caller.name },
                workers: [caller],
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
