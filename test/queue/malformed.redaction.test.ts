/**
 * A malformed message's body is kept as evidence (log line and audit event)
 * only after its secrets are masked: the cap applies after masking, so a cut
 * can never leave part of a secret too short to be recognised.
 */
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { MAX_MESSAGE_LENGTH } from "../../src/lifecycle";
import { OPERATIONS, capturingErrorLog, deliver } from "../support/execution";

it("a long body with a key across the 500-character cap is masked, not cut in half, in the log and the audit event", async () => {
  const key = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  // The key starts 30 characters before the cap: a cut first would keep 30 hex characters,
  // fewer than the 32 the long-hex pattern needs, and they would reach the operator.
  const body = { note: `${"ab ".repeat(152)}x`, key };
  const before = JSON.stringify(body).indexOf(key);
  expect(MAX_MESSAGE_LENGTH - before).toBeGreaterThan(20);
  expect(MAX_MESSAGE_LENGTH - before).toBeLessThan(32);

  const id = `m-secret-${crypto.randomUUID().slice(0, 8)}`;
  const { json } = await capturingErrorLog(() => deliver(OPERATIONS, [{ body, attempts: 1, id }]));

  const line = json.find((l) => l.messageId === id);
  const row = await env.DB.prepare("SELECT metadata FROM audit_events WHERE subject_id = ?").bind(id).first<{ metadata: string }>();
  const stored = JSON.parse(row!.metadata) as { body: string };
  for (const shown of [String(line?.body), stored.body]) {
    expect(shown).not.toMatch(/[0-9a-f]{12,}/);
    expect(shown).toContain("[redacted]");
    expect([...shown].length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
  }
});
