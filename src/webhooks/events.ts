/**
 * The events a webhook endpoint can receive, and their payloads (Standard
 * Webhooks shape: `{type, timestamp, data}`, https://www.standardwebhooks.com/).
 */
import type { RunState } from "../lifecycle";

export const WEBHOOK_EVENT_TYPES = ["run.completed"] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** The run as a completed event carries it: contract field names, times in ISO 8601. */
export interface RunCompletedData {
  runId: string;
  workspaceId: string;
  type: string;
  status: "completed";
  outcome: RunState["outcome"];
  reasonCode: string | null;
  reconciledBy: string | null;
  attempt: number;
  maxAttempts: number;
  failureMessage: string | null;
  createdAt: string;
  completedAt: string;
}

export interface RunCompletedEvent {
  type: "run.completed";
  /** When the run completed (ISO 8601); the `webhook-timestamp` header is the time of each try. */
  timestamp: string;
  data: RunCompletedData;
}

/** The `run.completed` payload of a run that just became completed in state `to`. */
export function runCompletedEvent(
  run: { id: string; workspaceId: string; type: string; createdAt: number },
  to: RunState,
  r: { completedAt: number; failureMessage: string | null },
): RunCompletedEvent {
  const completedAt = new Date(r.completedAt).toISOString();
  return {
    type: "run.completed",
    timestamp: completedAt,
    data: {
      runId: run.id,
      workspaceId: run.workspaceId,
      type: run.type,
      status: "completed",
      outcome: to.outcome,
      reasonCode: to.reasonCode,
      reconciledBy: to.reconciledBy,
      attempt: to.attempt,
      maxAttempts: to.maxAttempts,
      failureMessage: r.failureMessage,
      createdAt: new Date(run.createdAt).toISOString(),
      completedAt,
    },
  };
}
