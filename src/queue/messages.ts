/** The queue message: a pointer to the run, never its input (D1 is the record). */
import { z } from "zod";

export const operationMessage = z
  .object({
    v: z.literal(1),
    runId: z.string().regex(/^run_[0-9A-HJKMNP-TV-Z]{26}$/, "not a run id"),
    workspaceId: z.string().min(1).max(200),
    type: z.string().min(1).max(200),
  })
  .strict();

export type OperationMessage = z.infer<typeof operationMessage>;

export function operationMessageFor(run: { id: string; workspaceId: string; type: string }): OperationMessage {
  return { v: 1, runId: run.id, workspaceId: run.workspaceId, type: run.type };
}

/** Field errors of a malformed message, for the log line and the audit event. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.slice(0, 10).map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`);
}
