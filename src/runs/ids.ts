import { encodeTime, monotonicFactory } from "ulidx";

// Monotonic within an isolate, so ids minted in the same millisecond still sort
// in creation order (keyset pagination and timelines rely on it). An id minted
// for an earlier time than the last (a clock passed in, e.g. a reconstructed
// past) carries that time, not the last one: retention and the admin's "created
// within" filter read a run's creation time from its id's time prefix.
let monotonic = monotonicFactory();
let lastMs = 0;

function mint(now: number = Date.now()): string {
  // ulidx's factory would keep the later time; a fresh one starts at `now`, still monotonic from there.
  if (now < lastMs) monotonic = monotonicFactory();
  lastMs = now;
  return monotonic(now);
}

export const newRunId = (now?: number): string => `run_${mint(now)}`;
export const newEventId = (now?: number): string => `evt_${mint(now)}`;

/**
 * The smallest id of `prefix` ("run", "evt") minted at `ms` (epoch ms): its
 * ULID time prefix and zeros. Every id minted earlier sorts below it, so a
 * time bound on creation is a range on the primary key.
 */
export const minIdAt = (prefix: "run" | "evt", ms: number): string =>
  `${prefix}_${encodeTime(Math.max(0, Math.floor(ms)), 10)}${"0".repeat(16)}`;
