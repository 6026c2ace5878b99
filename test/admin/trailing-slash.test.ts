import { expect, it } from "vitest";
import { seedUser, signIn } from "../support/admin";
import { makeWorkspace } from "../support/fixtures";

it("/admin and /admin/ both lead a signed-in operator to the operations page", async () => {
  const ws = await makeWorkspace("slash");
  const client = await signIn((await seedUser([[ws, "viewer"]], "slash")).id);
  for (const path of ["/admin", "/admin/"]) {
    const res = await client.get(path);
    expect(res.status, path).toBe(302);
    expect(res.headers.get("location"), path).toBe("/admin/operations");
  }
});
