import { cloudflareTest, readD1Migrations } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects: "workers" runs inside workerd (bindings, D1, Durable Objects);
// "node" runs in plain Node for tests that must spawn processes (the CLI
// scripts, wrangler), which the Workers runtime cannot do.
export default defineConfig(async () => {
  const migrations = await readD1Migrations("./migrations");
  return {
    test: {
      projects: [
        {
          plugins: [
            cloudflareTest({
              wrangler: { configPath: "./wrangler.toml" },
              miniflare: { bindings: { TEST_MIGRATIONS: migrations } },
            }),
          ],
          test: {
            name: "workers",
            include: ["test/**/*.test.ts"],
            exclude: ["test/node/**", "**/node_modules/**"],
            setupFiles: ["./test/setup.ts"],
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
      ],
    },
  };
});
