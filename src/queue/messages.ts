/**
 * The queue message: a pointer to the run and the tracker's dispatch number,
 * never its input (D1 is the record). Versioned: v1 messages (before the
 * dispatch model, no dispatch number) are still read and claim the tracker's
 * current dispatch.
 */
import { z } from "zod";

const runId = z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/, "not a run id");
const ref = {
  runId,
  workspaceId: z.string().min(1).max(200),
  type: z.string().min(1).max(200),
};

const messageV1 = z.object({ v: z.literal(1), ...ref }).strict();
const messageV2 = z.object({ v: z.literal(2), ...ref, dispatch: z.number().int().min(1).max(1_000_000) }).strict();

export const operationMessage = z.discriminatedUnion("v", [messageV2, messageV1]);

export type OperationMessage = z.infer<typeof operationMessage>;

/** The message of dispatch `dispatch` of a run. */
export function operationMessageFor(run: { id: string; workspaceId: string; type: string }, dispatch: number): OperationMessage {
  return { v: 2, runId: run.id, workspaceId: run.workspaceId, type: run.type, dispatch };
}

/** The dispatch a message presents; `null` for a v1 message (it claims the current one). */
export function dispatchOf(message: OperationMessage): number | null {
  return message.v === 2 ? message.dispatch : null;
}

/** Field errors of a malformed message, for the log line and the audit event. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
}
