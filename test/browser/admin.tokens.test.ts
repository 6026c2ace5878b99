/**
 * Browser: an owner creates an API token on /admin/settings/tokens and sees
 * it once (gone after a reload), then revokes it and sees its row turn to
 * revoked, while the API answers the token 200 before and 401 after.
 */
import { describe, expect } from "vitest";
import { expectNoProblems, localWorker, screenshot, seed, signIn, test } from "./support/browser";
import { workspaceSql } from "./support/fixtures";

const it = test.extend("owner", { scope: "file" }, async ({ admin }) => {
  const ws = workspaceSql("tokens");
  await seed(ws.sql);
  await signIn(admin.page, ws.workspace.ownerEmail);
  return ws.workspace;
});

const api = (token: string) => fetch(`${localWorker().baseUrl}/api/v1/runs`, { headers: { authorization: `Bearer ${token}` } });

describe("API tokens (browser)", () => {
  it("an owner creates a token, sees it once, revokes it and sees the state change", async ({ admin, owner }) => {
    const { page } = admin;
    expect(await page.locator(".who__user").getAttribute("title")).toBe(owner.ownerEmail);
    await page.getByRole("link", { name: "Settings" }).click();
    await page.waitForURL("**/admin/settings/tokens");
    expect(await page.locator("h1").textContent()).toBe("API tokens");

    await page.getByLabel("Name").fill("Browser deploy key");
    await page.getByRole("button", { name: "Create token" }).click();
    const shown = page.locator("code[data-token]");
    await shown.waitFor();
    const token = (await shown.textContent()) ?? "";
    expect(token).toMatch(/^olt_[A-Za-z0-9_-]{43}$/);
    expect(await page.locator("[data-created-token]").innerText()).toContain("shown only this once");
    await screenshot(page, "tokens-created");
    expect((await api(token)).status).toBe(200);

    // Once: the list, loaded again, does not have it.
    await page.goto("/admin/settings/tokens");
    expect(await page.locator("code[data-token]").count()).toBe(0);
    expect(await page.content()).not.toContain(token.slice(4));
    const row = page.locator("tr[data-token-id]", { hasText: "Browser deploy key" });
    expect(await row.getAttribute("data-state")).toBe("live");
    expect(await row.innerText()).toContain("Live");

    await row.getByRole("button", { name: "Revoke Browser deploy key" }).click();
    await page.waitForURL("**/admin/settings/tokens");
    const after = page.locator("tr[data-token-id]", { hasText: "Browser deploy key" });
    expect(await after.getAttribute("data-state")).toBe("revoked");
    expect(await after.innerText()).toContain("Revoked");
    expect(await after.getByRole("button", { name: /Revoke/ }).count()).toBe(0);
    await screenshot(page, "tokens-revoked");
    expect((await api(token)).status).toBe(401);
    expectNoProblems(admin);
  });
});
