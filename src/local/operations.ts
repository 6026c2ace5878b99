/**
 * The operation types of local and test builds, beside production's:
 * `demo.work`, whose inputs inject faults. Registered by `installLocalBuild`
 * (./index.ts) and by `npm run check:lifecycle`, which checks every type any
 * build of this repository runs; production's entry never imports this file.
 */
import { demoWork } from "../operations/demo-work";
import { registerLocalOperations, registerOperation, type RegisteredOperation } from "../operations/registry";

export const LOCAL_OPERATIONS: readonly RegisteredOperation[] = [registerOperation(demoWork)];

let registered = false;

/** Add LOCAL_OPERATIONS to the registry, once (a second call is a no-op). */
export function registerLocalOperationTypes(): void {
  if (registered) return;
  registered = true;
  registerLocalOperations(LOCAL_OPERATIONS);
}
