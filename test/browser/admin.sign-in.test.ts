/**
 * Browser: the owner of the demo workspace (the project's own seed) signs in
 * through /admin/sign-in and lands on /admin/operations of that workspace.
 */
import { describe, expect } from "vitest";
import { expectNoProblems, screenshot, test as it } from "./support/browser";

describe("admin sign-in (browser)", () => {
  it("signs in as the demo owner and lands on the operations page", async ({ admin }) => {
    const { page } = admin;
    await page.goto("/admin/operations");
    // Not signed in yet: the admin sends a browser to the sign-in page.
    await page.waitForURL("**/admin/sign-in");
    await screenshot(page, "sign-in");

    await page.getByRole("button", { name: /owner@demo\.test/ }).click();
    await page.waitForURL("**/admin/operations");
    expect(await page.locator("h1").textContent()).toBe("Operations");
    expect(await page.locator(".who__user").textContent()).toContain("Demo Owner");
    expect(await page.locator(".who__user .role").textContent()).toBe("owner");
    expect(await page.locator('select[name="workspaceId"] option[selected]').textContent()).toBe("Demo workspace");
    await screenshot(page, "operations-after-sign-in");
    expectNoProblems(admin);
  });
});
