import { env } from "cloudflare:workers";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";
import { vi } from "vitest";

let counter = 0;

/** A fresh workspace per call, so tests never share rows. */
export async function makeWorkspace(name = "ws"): Promise<string> {
  counter++;
  const id = `ws_${name}_${counter}_${crypto.randomUUID().slice(0, 8)}`;
  await env.DB.prepare("INSERT INTO workspaces (id, slug, name, created_at) VALUES (?, ?, ?, ?)")
    .bind(id, id, name, Date.now())
    .run();
  return id;
}

/** A controllable clock for deadline arithmetic. */
export function manualClock(start = Date.now()) {
  let now = start;
  return {
    now: () => now,
    advance(ms: number) {
      now += ms;
      return now;
    },
    set(ms: number) {
      now = ms;
    },
  };
}

/**
 * Stop the clock at `at` (default: now) for the rest of the test: `Date` only,
 * so D1, queues and timers keep running, but the Worker code this isolate
 * runs (the API, the admin) reads that one instant however long the test
 * takes. A run seeded fresh stays fresh on a slow machine; without it, a
 * running run reads as stale once heartbeatTimeoutMs + one flush interval
 * (35 s for demo.work) of real time pass. test/setup.ts restarts the clock
 * after every test.
 */
export function stopClock(at = Date.now()): void {
  vi.useFakeTimers({ toFake: ["Date"], now: at });
}

export function runService(clock: () => number = Date.now): RunService {
  return new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, clock });
}

export async function auditActions(runId: string): Promise<string[]> {
  const res = await env.DB.prepare("SELECT action FROM audit_events WHERE subject_id = ? ORDER BY id")
    .bind(runId)
    .all<{ action: string }>();
  return res.results.map((r) => r.action);
}
