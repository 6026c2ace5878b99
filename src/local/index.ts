/**
 * What a local or test build adds to production's Worker: the `demo.work`
 * type and the fault hooks (a simulated crash that ends the consumer
 * invocation). Installed by src/index.local.ts, the entry of `npm start`, the
 * tests, the bench and the soak; `wrangler deploy` bundles src/index.ts,
 * which never imports this folder.
 */
import { recogniseCrashes } from "../queue/attempt";
import { SimulatedCrash } from "./faults";
import { registerLocalOperationTypes } from "./operations";

export { SimulatedCrash } from "./faults";
export { LOCAL_OPERATIONS } from "./operations";

/** Idempotent: the test setup and the entry may both call it in one isolate. */
export function installLocalBuild(): void {
  registerLocalOperationTypes();
  recogniseCrashes((error) => error instanceof SimulatedCrash);
}
