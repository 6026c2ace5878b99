/**
 * The structured log line (src/log.ts): each field is redacted with its key,
 * as audit metadata is, so a queue message id (32 hex characters, the shape
 * of a key) stays matchable to its run while secrets stay masked.
 */
import { describe, expect, it } from "vitest";
import { log } from "../src/log";
import { capturingConsole } from "./support/logs";

const MESSAGE_ID = "6a1f0c9e2b7d4e8fa3c5b1d0e9f87a64";

describe("log", () => {
  it("keeps a message id and a run id, masks a secret field and a secret inside text", async () => {
    const { json } = await capturingConsole("error", async () =>
      log.error("consumer.message_failed", {
        queue: "operations",
        messageId: MESSAGE_ID,
        runId: "run_01J0000000000000000000000A",
        token: "olt_live_secret",
        detail: "upstream said api_key=k_live_123",
        error: new Error("D1 said password=hunter2"),
      }),
    );
    expect(json).toEqual([
      {
        level: "error",
        event: "consumer.message_failed",
        queue: "operations",
        messageId: MESSAGE_ID,
        runId: "run_01J0000000000000000000000A",
        token: "[redacted]",
        detail: "upstream said api_key=[redacted]",
        error: "D1 said password=[redacted]",
      },
    ]);
  });

  it("a 32-hex value under a key that is not an id is still masked", async () => {
    const { json } = await capturingConsole("log", async () => log.info("x", { digest: MESSAGE_ID, nested: { messageId: MESSAGE_ID } }));
    expect(json).toEqual([{ level: "info", event: "x", digest: "[redacted]", nested: { messageId: MESSAGE_ID } }]);
  });
});
