/** The run service as every entry point uses it: the registry's policies and the system settings. */
import { DEFAULT_SETTINGS } from "./lifecycle";
import { policyFor } from "./operations";
import { RunService } from "./runs";

export function runServiceFor(db: D1Database): RunService {
  return new RunService(db, { policyFor, settings: DEFAULT_SETTINGS });
}
