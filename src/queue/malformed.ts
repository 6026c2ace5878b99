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
  const fields = { queue, messageId: message.id, attempts: message.attempts, issues, body: body.slice(0, 500) };
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
