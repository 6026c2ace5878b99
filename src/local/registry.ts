/**
 * What `npm run check:lifecycle` bundles by default (scripts/lib/registry.ts):
 * production's registry plus the local build's types, since both run against
 * the same queue and cron settings.
 */
import { registerLocalOperationTypes } from "./operations";

registerLocalOperationTypes();

export { registeredPolicies } from "../operations/registry";
