/**
 * The cron entry. It refuses to act on a violated timing contract, naming the
 * rule. The reconciliation sweep itself is the next piece of work (see the
 * issue tracker); until it exists this entry fails loudly rather than
 * pretending to have swept.
 */
import { assertTimingContract } from "../lifecycle";
import { runtimeContract } from "../contract-runtime";

export async function handleScheduled(_controller: ScheduledController, _env: Env, _ctx: ExecutionContext): Promise<void> {
  assertTimingContract(runtimeContract());
  throw new Error("The reconciliation sweep is not built yet; trackers and the dead-letter bridge still converge runs.");
}
