import { encodeTime, monotonicFactory } from "ulidx";

// Monotonic within an isolate, so ids minted in the same millisecond, or for a
// slightly earlier time than the last (a clock read before an await), still sort
// in creation order (keyset pagination and timelines rely on it). An id minted for
// a time more than an hour before the last (a history reconstructed in the past,
// as tests and seeds do) carries that time: retention and the admin's "created
// within" filter read a run's creation time from its id's time prefix.
const RECONSTRUCTED_PAST_MS = 3_600_000;
let monotonic = monotonicFactory();
/** The latest time the current factory minted for. */
let factoryMs = 0;

function mint(now: number = Date.now()): string {
  // ulidx's factory would keep its later time; a fresh one starts at `now`, monotonic from there.
  if (now < factoryMs - RECONSTRUCTED_PAST_MS) {
    monotonic = monotonicFactory();
    factoryMs = now;
  }
  factoryMs = Math.max(factoryMs, now);
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
