import { env } from "cloudflare:workers";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { policyFor } from "../../src/operations";
import { RunService } from "../../src/runs";

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

export function runService(clock: () => number = Date.now): RunService {
  return new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS, clock });
}

export async function auditActions(runId: string): Promise<string[]> {
  const res = await env.DB.prepare("SELECT action FROM audit_events WHERE subject_id = ? ORDER BY id")
    .bind(runId)
    .all<{ action: string }>();
  return res.results.map((r) => r.action);
}
