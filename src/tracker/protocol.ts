/** What the tracker answers over RPC (plain, structured-cloneable objects). */
import type { Progress, Refusal, RunStatus } from "../lifecycle";
import type { AlarmAction, TrackerState } from "./state";

export type TrackerRefusal = Refusal | "not_found";

/** What the consumer needs to run an attempt. */
export interface RunTicket {
  runId: string;
  workspaceId: string;
  type: string;
  /** The stored input as JSON text (a recursive JSON type is too deep for RPC typing). */
  inputJson: string;
  attempt: number;
  maxAttempts: number;
  progress: Progress;
}

export type ClaimAnswer = { ok: true; takeover: boolean; run: RunTicket } | { ok: false; refusal: TrackerRefusal };
export type HeartbeatReply = { ok: true } | { ok: false; refusal: TrackerRefusal };
export type ReportAnswer =
  | { ok: true; status: RunStatus | null }
  | { ok: false; refusal: TrackerRefusal; status: RunStatus | null };
export type TrackerStatus = { known: false } | { known: true; state: TrackerState; action: AlarmAction };
