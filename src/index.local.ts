/**
 * The Worker of local and test builds: production's entry (./index.ts), plus
 * `demo.work` and the fault hooks (./local/). `npm start`, the Workers tests
 * (vitest.config.ts `main`), the browser and runtime tests, the bench and the
 * soak run this entry; `wrangler deploy` bundles wrangler.toml's `main`,
 * src/index.ts, which never imports ./local/.
 *
 * Why a second entry and not a build-time constant (wrangler `[define]`):
 * wrangler bundles without minifying, and esbuild then keeps an `if (false)`
 * branch and every module it names; the demo type's schema, built by calls at
 * module level, would ship anyway. A module production never imports cannot
 * ship. test/node/deploy.test.ts checks both bundles.
 */
import { installLocalBuild } from "./local";

installLocalBuild();

// Named, not `export *`: the Workers test integration finds a Worker's entrypoints by
// reading its main module's own export names (a service binding to OplifeRpc needs it).
export { default, OplifeRpc, RunTracker } from "./index";
