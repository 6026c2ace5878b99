/**
 * The timing contract as the running Worker sees it: the registered policies
 * against the deployment generated from wrangler.toml (src/generated). The
 * API refuses new runs of a type whose rules are violated (contract section 5).
 */
import { checkTimingContract, DEFAULT_SETTINGS, type ContractReport } from "./lifecycle";
import { DEPLOYMENT } from "./generated/deployment";
import { registeredPolicies } from "./operations";

let cached: ContractReport | undefined;

/** Checked once per isolate: policies and deployment are fixed for its lifetime. */
export function runtimeContract(): ContractReport {
  cached ??= checkTimingContract(registeredPolicies(), DEPLOYMENT, DEFAULT_SETTINGS);
  return cached;
}
