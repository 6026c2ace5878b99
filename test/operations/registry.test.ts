/**
 * The registry takes a plain list of definitions: different input types in
 * one array, mapped or handed to defineRegistry, and every listed type is
 * what the API, the consumer and the timing contract see.
 */
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  defineOperation,
  defineRegistry,
  getOperation,
  OPERATIONS,
  operationTypes,
  registeredPolicies,
  registerOperation,
  type RegisteredOperation,
} from "../../src/operations";
import { demoWork } from "../../src/operations/demo-work";
import { httpExport } from "../../src/operations/http-export";

const echo = defineOperation({
  type: "test.echo",
  description: "Returns its input as output.",
  input: z.object({ text: z.string() }).strict(),
  policy: demoWork.policy,
  async handler(input) {
    return { outcome: "succeeded", output: { text: input.text } };
  },
});

describe("the operation registry", () => {
  it("maps a list of definitions with different input types through registerOperation", () => {
    // Type-checks only because registerOperation takes any definition (AnyOperationDefinition).
    const registered: RegisteredOperation[] = [demoWork, echo].map(registerOperation);
    expect(registered.map((op) => op.type)).toEqual(["demo.work", "test.echo"]);
    expect(registered[1]!.prepare({ text: 1 })).toMatchObject({ ok: false, issues: [{ path: "text" }] });
  });

  it("defineRegistry keeps list order and each type's own schema and policy", async () => {
    const registry = defineRegistry([echo, httpExport]);
    expect(registry.types()).toEqual(["test.echo", "http.export"]);
    expect(registry.policies()).toEqual({ "test.echo": demoWork.policy, "http.export": httpExport.policy });
    const prepared = registry.get("test.echo")!.prepare({ text: "hi" });
    if (!prepared.ok) throw new Error("valid input refused");
    const ctx = { runId: "r", workspaceId: "w", attempt: 1, maxAttempts: 1, signal: new AbortController().signal, reportProgress() {} };
    await expect(prepared.run({ ...ctx, env: {} as Env })).resolves.toEqual({ outcome: "succeeded", output: { text: "hi" } });
    expect(registry.get("demo.work")).toBeUndefined();
  });

  it("refuses a list that names one type twice, naming it", () => {
    expect(() => defineRegistry([demoWork, echo, { ...echo, description: "again" }])).toThrow('Operation type "test.echo" is registered twice.');
  });

  it("the Worker's registry is production's OPERATIONS (http.export) plus the local build's demo.work, each with its policy", () => {
    expect(OPERATIONS.map((op) => op.type)).toEqual(["http.export"]);
    expect(operationTypes()).toEqual(["http.export", "demo.work"]);
    expect(registeredPolicies()["http.export"]).toBe(httpExport.policy);
    expect(getOperation("http.export")?.description).toBe(httpExport.description);
  });
});
