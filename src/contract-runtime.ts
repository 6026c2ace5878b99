/**
 * The timing contract as the running Worker sees it: the registered policies
 * against the deployment generated from wrangler.toml (src/generated). The
 * queue and cron entries refuse to act on a violated contract.
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

/** Names of the dead-letter queues (to route a batch to the bridge). */
export function deadLetterQueues(): Set<string> {
  return new Set(DEPLOYMENT.queueConsumers.flatMap((c) => (c.deadLetterQueue ? [c.deadLetterQueue] : [])));
}
