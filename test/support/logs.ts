/**
 * Capturing what the Worker logs (src/log.ts writes one JSON line per event:
 * info to console.log, errors to console.error) while `fn` runs: every call
 * as written, and the calls that are one structured JSON object line.
 */
export interface Captured<T> {
  value: T;
  raw: unknown[][];
  json: Record<string, unknown>[];
}

export async function capturingConsole<T>(level: "log" | "warn" | "error", fn: () => Promise<T>): Promise<Captured<T>> {
  const original = console[level];
  const raw: unknown[][] = [];
  console[level] = (...args: unknown[]) => {
    raw.push(args);
  };
  try {
    const value = await fn();
    return { value, raw, json: jsonLines(raw) };
  } finally {
    console[level] = original;
  }
}

function jsonLines(raw: unknown[][]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const args of raw) {
    if (args.length !== 1 || typeof args[0] !== "string") continue;
    try {
      const parsed: unknown = JSON.parse(args[0]);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) out.push(parsed as Record<string, unknown>);
    } catch {
      // Not a structured line: kept in `raw` for the test to judge.
    }
  }
  return out;
}
