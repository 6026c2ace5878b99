/** The run service and display state as every entry point uses them: the registry's policies and the system settings. */
import { DEFAULT_SETTINGS, displayState, type DisplayInput, type DisplayState } from "./lifecycle";
import { getOperation, policyFor } from "./operations";
import { RunService } from "./runs";

export function runServiceFor(db: D1Database): RunService {
  return new RunService(db, { policyFor, settings: DEFAULT_SETTINGS });
}

/** A run's display state at `now`; a type no longer registered has no policy to vouch for liveness. */
export function displayStateOf(run: DisplayInput & { type: string }, now: number): DisplayState {
  return displayState(run, getOperation(run.type)?.policy ?? null, DEFAULT_SETTINGS, now);
}
