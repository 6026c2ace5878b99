/**
 * A handler's output (contract section 1, `output`) on the Workers runtime:
 * stored with a success or partial success, never with a failure; an output
 * JSON cannot hold (a BigInt, a cycle) or over MAX_OUTPUT_BYTES fails the
 * attempt with a clear, non-retryable `handler.error` instead of crashing; the
 * tracker keeps the cap itself; and the output survives a D1 failure of the
 * result write (before and after commit) and a tracker reset, since it travels
 * in the report the tracker holds.
 *
 * Handlers other than demo.work's own are stood in by replacing
 * `demoWork.handler` for one test (the registry calls it at run time): the
 * boundary is wrapped, no test type ships in the Worker.
 */
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_OUTPUT_BYTES, serializeOutput, type OperationResult } from "../../src/operations";
import { demoWork } from "../../src/operations/demo-work";
import { backoffMs, trackerFor, type AttemptReport } from "../../src/tracker";
import { apiClient, bodyOf, call, runEnvelope } from "../support/api";
import { makeWorkspace } from "../support/fixtures";
import { onlyEvent, storedRow } from "../support/runs";
import {
  OPERATIONS,
  actionsOf,
  ageTracker,
  createRun,
  deliver,
  expectAcked,
  faultyD1,
  getRun,
  patchTrackerEnv,
  runAlarm,
  trackerState,
  type D1FaultMode,
} from "../support/execution";

const TRANSITION = (sql: string) => sql.includes("SET status = ?");

/** Replace demo.work's handler for this test with one that returns `result`. */
function handlerReturns(result: OperationResult): void {
  vi.spyOn(demoWork, "handler").mockImplementation(async () => result);
}

/** Create a demo.work run, deliver its first dispatch, and return the run as stored afterwards. */
async function runOnce(workspaceId: string, input: unknown = { steps: 2, stepMs: 0 }) {
  const { run, message } = await createRun(workspaceId, input);
  expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }]));
  return getRun(run.id);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("output is stored with a success or partial success", () => {
  it("demo.work's output lands in the run's output column and its API JSON", async () => {
    const client = await apiClient("output");
    const run = await runOnce(client.workspaceId, { steps: 3, stepMs: 0 });
    expect(run).toMatchObject({ status: "completed", outcome: "succeeded", output: { items: 3 } });
    expect((await storedRow(run.id)).output).toBe('{"items":3}');
    const { run: json } = await bodyOf(await call(`/api/v1/runs/${run.id}`, { token: client.token }), runEnvelope);
    expect(json.output).toEqual({ items: 3 });
  });

  it("a partial success keeps its output; a failed outcome stores none (and its output is not even checked)", async () => {
    const ws = await makeWorkspace("output-partial");
    const partial = await runOnce(ws, { steps: 3, stepMs: 0, partialAtStep: 2 });
    expect(partial).toMatchObject({ outcome: "partially_succeeded", output: { items: 2 } });

    handlerReturns({ outcome: "failed", message: "nope", output: { big: 10n } });
    const failed = await runOnce(ws);
    expect(failed).toMatchObject({ status: "completed", outcome: "failed", reasonCode: "handler.failed", output: null });
    expect((await storedRow(failed.id)).output).toBeNull();
  });

  it("no output is NULL, and an output at exactly MAX_OUTPUT_BYTES (multi-byte characters counted in UTF-8) is kept", async () => {
    const ws = await makeWorkspace("output-edge");
    handlerReturns({ outcome: "succeeded" });
    expect((await storedRow((await runOnce(ws)).id)).output).toBeNull();

    // "é" is 2 bytes in UTF-8: a JSON string of them, quotes included, exactly at the cap.
    const exact = "é".repeat((MAX_OUTPUT_BYTES - 2) / 2);
    handlerReturns({ outcome: "succeeded", output: exact });
    const kept = await runOnce(ws);
    expect(kept).toMatchObject({ outcome: "succeeded", output: exact });
  });
});

describe("an output the run cannot keep fails the attempt with handler.error, not retried", () => {
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic["self"] = cyclic;
  const cases: Array<[string, unknown, RegExp]> = [
    ["a BigInt", { count: 12n }, /not serialisable as JSON: .*BigInt/i],
    ["a cycle", cyclic, /not serialisable as JSON: .*(cyclic|circular)/i],
    ["a function", () => 1, /not serialisable as JSON: a function has no JSON form/],
    ["one byte over the cap", "é".repeat((MAX_OUTPUT_BYTES - 2) / 2) + "x", new RegExp(`${MAX_OUTPUT_BYTES + 1} bytes of JSON, over the limit of ${MAX_OUTPUT_BYTES} bytes`)],
  ];
  for (const [what, output, message] of cases) {
    it(`${what}: one attempt, run.failed, the reason in diagnostics, no output stored`, async () => {
      const ws = await makeWorkspace("output-bad");
      handlerReturns({ outcome: "succeeded", output });
      const run = await runOnce(ws);
      expect(run).toMatchObject({ status: "completed", outcome: "failed", reasonCode: "handler.error", attempt: 1, output: null });
      expect(run.diagnostics.lastError?.message).toMatch(message);
      expect(run.failureMessage).toBe("Attempt 1 of 3 failed with an error; the error is in diagnostics.");
      expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.failed"]);
      expect((await onlyEvent(run.id, "run.failed")).metadata).toMatchObject({ retryable: false, reason: "handler.error" });
      expect(await trackerState(run.id)).toMatchObject({ status: "completed", pending: null });
    });
  }

  it("serializeOutput never throws, whatever toJSON does", () => {
    const hostile = {
      toJSON() {
        throw new Error("toJSON exploded");
      },
    };
    expect(serializeOutput(hostile)).toEqual({ ok: false, message: "The handler's output is not serialisable as JSON: toJSON exploded." });
    expect(serializeOutput(undefined)).toEqual({ ok: true, json: undefined });
    expect(serializeOutput({ at: new Date(0), n: Number.NaN })).toEqual({ ok: true, json: '{"at":"1970-01-01T00:00:00.000Z","n":null}' });
  });
});

describe("the tracker keeps the cap itself", () => {
  it("a result reported with an output over the cap is stored and applied as handler.error, never held as sent", async () => {
    const ws = await makeWorkspace("output-tracker-cap");
    const { run } = await createRun(ws, { steps: 2, stepMs: 0 });
    const stub = trackerFor(env, run.id);
    expect(await stub.claim({ runId: run.id, dispatch: 1 })).toMatchObject({ ok: true });
    const oversized = JSON.stringify("x".repeat(MAX_OUTPUT_BYTES));
    const answer = await stub.report({ kind: "result", attempt: 1, outcome: "succeeded", outputJson: oversized });
    expect(answer).toEqual({ ok: true, applied: true, status: "completed" });
    expect(await getRun(run.id)).toMatchObject({ outcome: "failed", reasonCode: "handler.error", output: null });
    expect(JSON.stringify(await trackerState(run.id))).not.toContain("xxxxxxxx");
  });
});

describe("the output survives what the result survives", () => {
  for (const mode of ["before-commit", "after-commit"] as D1FaultMode[]) {
    it(`D1 failing the result write ${mode}: the held report keeps the output and the alarm applies it once`, async () => {
      const ws = await makeWorkspace("output-d1");
      const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
      const fault = faultyD1((sql) => TRANSITION(sql) && !sql.includes("attempt_started"), { mode });
      const stub = trackerFor(env, run.id);
      const consumerEnv = {
        ...env,
        RUN_TRACKER: {
          getByName: () => ({
            claim: async (req: { runId: string; dispatch: number | null }) => {
              const answer = await stub.claim(req);
              await patchTrackerEnv(run.id, (e) => ({ ...e, DB: fault.db }));
              return answer;
            },
            heartbeat: (req: { attempt: number }) => stub.heartbeat(req),
            report: (req: AttemptReport) => stub.report(req),
          }),
        } as unknown as Env["RUN_TRACKER"],
      };

      expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], consumerEnv));
      expect(fault.struck()).toBe(1);
      expect((await trackerState(run.id))?.pending).toMatchObject({ kind: "result", outcome: "succeeded", outputJson: '{"items":2}' });

      await ageTracker(run.id, backoffMs(1));
      await runAlarm(run.id);

      expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", output: { items: 2 } });
      expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
    });
  }

  it("the tracker reset after it stored the report: the consumer's second report carries the output, applied once", async () => {
    const ws = await makeWorkspace("output-reset");
    const { run, message } = await createRun(ws, { steps: 2, stepMs: 0 });
    const stub = trackerFor(env, run.id);
    let reports = 0;
    const consumerEnv = {
      ...env,
      RUN_TRACKER: {
        getByName: () => ({
          claim: (req: { runId: string; dispatch: number | null }) => stub.claim(req),
          heartbeat: (req: { attempt: number }) => stub.heartbeat(req),
          report: async (req: AttemptReport) => {
            if (++reports === 1) {
              await stub.report(req);
              throw new Error("Durable Object reset because its code was updated.");
            }
            return stub.report(req);
          },
        }),
      } as unknown as Env["RUN_TRACKER"],
    };
    expectAcked(await deliver(OPERATIONS, [{ body: message, attempts: 1 }], consumerEnv));
    expect(reports).toBe(2);
    expect(await getRun(run.id)).toMatchObject({ status: "completed", outcome: "succeeded", output: { items: 2 } });
    expect(await actionsOf(run.id)).toEqual(["run.queued", "run.attempt_started", "run.completed"]);
  });
});
