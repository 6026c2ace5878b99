import type { z } from "zod";
import { insertAuditEvent, SYSTEM_WORKSPACE_ID } from "../runs";
import { log } from "../log";
import { describeIssues } from "./messages";

/**
 * A message that does not parse is acked (it would fail the same way on every
 * delivery), logged as one structured line and recorded as an audit event of
 * the system workspace. If even the audit write fails, the log line is the
 * record and the message is still acked: retrying cannot make it valid.
 */
export async function recordMalformed(
  env: Env,
  queue: string,
  message: Message<unknown>,
  error: z.ZodError,
  actor: "system:consumer" | "system:dead-letter",
): Promise<void> {
  const issues = describeIssues(error);
  let body: string;
  try {
    body = JSON.stringify(message.body) ?? String(message.body);
  } catch {
    body = "[unserialisable body]";
  }
  // The body is capped where it is redacted (log and audit both redact, masking secrets before
  // the cut); cutting it here first could leave half a secret too short to be recognised.
  const fields = { queue, messageId: message.id, attempts: message.attempts, issues, body };
  log.error("queue.message_malformed", fields);
  try {
    await insertAuditEvent(env.DB, {
      workspaceId: SYSTEM_WORKSPACE_ID,
      actor,
      action: "queue.message_malformed",
      subjectType: "queue_message",
      subjectId: message.id,
      metadata: fields,
      createdAt: Date.now(),
    }).run();
  } catch (auditError) {
    log.error("queue.message_malformed_audit_failed", { messageId: message.id, error: auditError });
  }
}
