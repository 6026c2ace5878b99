import { env } from "cloudflare:workers";
import { expect, it } from "vitest";

it("smoke", async () => {
  const r = await env.DB.prepare("select 1 as x").first();
  expect(r).toEqual({ x: 1 });
  const stub = env.RUN_TRACKER.getByName("a");
  expect(await stub.ping()).toBe("pong");
});
