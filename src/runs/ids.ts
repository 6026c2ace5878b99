import { monotonicFactory } from "ulidx";

// Monotonic within an isolate, so ids minted in the same millisecond still sort
// in creation order (keyset pagination and timelines rely on it).
const ulid = monotonicFactory();

export const newRunId = (now?: number): string => `run_${ulid(now)}`;
export const newEventId = (now?: number): string => `evt_${ulid(now)}`;
