/**
 * The soak's D1 faults (bench/worker/d1-faults.ts) against the real local D1:
 * a write failed before commit never happened, one failed after commit did
 * (only its answer is lost), reads are never failed, and a batch holding a
 * write fails or commits as a whole.
 */
import { env } from "cloudflare:workers";
import { beforeEach, describe, expect, it, vi } from "vitest";
import { faultRate, faultyDb, type D1FaultCounts } from "../../bench/worker/d1-faults";

const RUN = "run_01KAAAAAAAAAAAAAAAAAAAAAAA";

/** Draws in order: first whether this call fails (< rate), then how (< 0.5: before commit). */
const draws = (...values: number[]) => {
  const queue = [...values];
  return () => {
    const v = queue.shift();
    if (v === undefined) throw new Error("no draw left");
    return v;
  };
};

async function rows(): Promise<string[]> {
  const res = await env.DB.prepare("SELECT id FROM fault_probe ORDER BY id").all<{ id: string }>();
  return res.results.map((r) => r.id);
}

describe("D1 faults injected by the soak's bench Worker", () => {
  let counts: D1FaultCounts;
  beforeEach(async () => {
    counts = { beforeCommit: 0, afterCommit: 0 };
    await env.DB.exec("CREATE TABLE IF NOT EXISTS fault_probe (id TEXT PRIMARY KEY NOT NULL)");
    await env.DB.exec("DELETE FROM fault_probe");
  });

  it("a write failed before commit never ran; one failed after commit ran and still throws", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const before = faultyDb(env.DB, 1, counts, draws(0, 0.1));
    await expect(before.prepare("INSERT INTO fault_probe (id) VALUES (?)").bind(RUN).run()).rejects.toThrow(/D1_ERROR.*before commit/);
    expect(await rows()).toEqual([]);

    const after = faultyDb(env.DB, 1, counts, draws(0, 0.9));
    await expect(after.prepare("INSERT INTO fault_probe (id) VALUES (?)").bind(RUN).run()).rejects.toThrow(/D1_ERROR.*after commit/);
    expect(await rows()).toEqual([RUN]);
    expect(counts).toEqual({ beforeCommit: 1, afterCommit: 1 });
    // Each fault is logged with the run ids its statement named: how the soak attributes it.
    expect(warn.mock.calls.map((c) => JSON.parse(String(c[0])) as Record<string, unknown>)).toEqual([
      expect.objectContaining({ event: "bench.d1_fault", when: "before_commit", runIds: [RUN] }),
      expect.objectContaining({ event: "bench.d1_fault", when: "after_commit", runIds: [RUN] }),
    ]);
    warn.mockRestore();
  });

  it("reads are never failed, and a draw at or above the rate passes a write through", async () => {
    const db = faultyDb(env.DB, 0.5, counts, draws(0.5));
    await db.prepare("INSERT INTO fault_probe (id) VALUES (?)").bind(RUN).run();
    // No draw is taken for a read: `draws` would throw if one were.
    expect(await db.prepare("SELECT id FROM fault_probe WHERE id = ?").bind(RUN).first("id")).toBe(RUN);
    expect(counts).toEqual({ beforeCommit: 0, afterCommit: 0 });
  });

  it("a batch with a write fails as a whole before commit, or commits as a whole after", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const stmts = (db: D1Database, ids: string[]) => ids.map((id) => db.prepare("INSERT INTO fault_probe (id) VALUES (?)").bind(id));
    const before = faultyDb(env.DB, 1, counts, draws(0, 0.1));
    await expect(before.batch(stmts(before, ["a", "b"]))).rejects.toThrow(/before commit/);
    expect(await rows()).toEqual([]);
    const after = faultyDb(env.DB, 1, counts, draws(0, 0.9));
    await expect(after.batch(stmts(after, ["a", "b"]))).rejects.toThrow(/after commit/);
    expect(await rows()).toEqual(["a", "b"]);
    vi.restoreAllMocks();
  });

  it("the rate comes from BENCH_D1_FAULT_RATE: unset is none, a value outside 0–1 is refused", () => {
    expect(faultRate(undefined)).toBe(0);
    expect(faultRate("0.01")).toBe(0.01);
    expect(() => faultRate("2")).toThrow(/BENCH_D1_FAULT_RATE must be a number from 0 to 1, got "2"/);
    expect(() => faultRate("abc")).toThrow(/got "abc"/);
  });
});
