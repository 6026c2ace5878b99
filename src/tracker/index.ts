export * from "./protocol";
export * from "./run-tracker";
export * from "./state";

/** The tracker of one run: one Durable Object per run id. */
export function trackerFor(env: Env, runId: string): DurableObjectStub<import("./run-tracker").RunTracker> {
  return env.RUN_TRACKER.getByName(runId);
}
