import { encodeTime, monotonicFactory } from "ulidx";

// Monotonic within an isolate, so ids minted in the same millisecond still sort
// in creation order (keyset pagination and timelines rely on it).
const ulid = monotonicFactory();

export const newRunId = (now?: number): string => `run_${ulid(now)}`;
export const newEventId = (now?: number): string => `evt_${ulid(now)}`;

/**
 * The smallest id of `prefix` ("run", "evt") minted at `ms` (epoch ms): its
 * ULID time prefix and zeros. Every id minted earlier sorts below it, so a
 * time bound on creation is a range on the primary key.
 */
export const minIdAt = (prefix: "run" | "evt", ms: number): string =>
  `${prefix}_${encodeTime(Math.max(0, Math.floor(ms)), 10)}${"0".repeat(16)}`;
