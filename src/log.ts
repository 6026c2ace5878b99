/**
 * One structured JSON line per event, so Workers Logs can filter by field.
 * Errors are reduced to their sanitised message: no stack reaches the logs'
 * consumers by accident (the platform keeps its own exception records).
 */
import { errorMessage, redactField } from "./lifecycle";

type Level = "debug" | "info" | "warn" | "error";

function emit(level: Level, event: string, fields: Record<string, unknown>): void {
  const out: Record<string, unknown> = { level, event };
  for (const [k, v] of Object.entries(fields)) {
    // Field by field with its key, as nested metadata is: `messageId` keeps its id, `token` is masked.
    out[k] = v instanceof Error || k === "error" ? errorMessage(v) : redactField(k, v);
  }
  const line = JSON.stringify(out);
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}

export const log = {
  debug: (event: string, fields: Record<string, unknown> = {}) => emit("debug", event, fields),
  info: (event: string, fields: Record<string, unknown> = {}) => emit("info", event, fields),
  warn: (event: string, fields: Record<string, unknown> = {}) => emit("warn", event, fields),
  error: (event: string, fields: Record<string, unknown> = {}) => emit("error", event, fields),
};
