/**
 * Figure 1 — detection latency. N runs (default 200) whose attempts die
 * mid-run, all alive at once: each heartbeats, then stops (demo.work
 * `dieAtStep`: heartbeats stop and the code never returns, as if the isolate
 * had died). Latency = (when the run became re-queued or terminal, i.e. the
 * winning write's audit event) − (its last heartbeat, as its tracker recorded
 * it) − heartbeatTimeoutMs.
 *
 * - tracker path: the trackers' alarms act (`run.attempt_lost`).
 * - sweep path: the trackers' alarms are switched off (BENCH_TRACKER_ALARM=off:
 *   they fire and do nothing, but the tracker still answers the sweep's status
 *   call, as a tracker whose every attempt to act failed would). The cron is
 *   fired at each wall-clock minute, as the platform does; attempts start
 *   spread over one minute so the sweep's phase is sampled, not fixed.
 *
 * Attempts are delivered to the production consumer (handleOperationsBatch)
 * by the harness in batches of 10, all at once: the local queue dispatches one
 * batch at a time, so 200 concurrent attempts cannot come from it.
 */
import { registeredPolicy } from "../../scripts/lib/registry";
import type { BenchClient } from "../lib/client";
import { sleep, WORKSPACE, type DevServer } from "../lib/dev";
import { emulateCron, waitFor, withInstance } from "../lib/instance";
import { summarize, type Summary } from "../lib/stats";

// Read from the Worker's registry without importing Worker code (scripts/lib/registry.ts).
const DEMO_POLICY = await registeredPolicy("demo.work");
const HEARTBEAT_TIMEOUT_MS = DEMO_POLICY.heartbeatTimeoutMs;

export interface DetectionResult {
  path: "tracker" | "sweep";
  n: number;
  detected: number;
  /** Latency beyond the heartbeat timeout, ms. */
  latency: Summary;
  /** Raw: from last heartbeat to the state change, ms. */
  sinceLastHeartbeat: Summary;
  outcomes: Record<string, number>;
  heartbeatsBeforeDeath: Summary;
  sweeps: Record<string, unknown>[];
  wallMs: number;
}

interface EventRow {
  subject_id: string;
  action: string;
  created_at: number;
  metadata: string;
}

async function createDyingRuns(client: BenchClient, n: number, timeoutMs: number): Promise<{ runIds: string[]; messages: unknown[] }> {
  // ~2.5 s of work, then death at step 6 (after at least two heartbeats).
  const input = { steps: 20, stepMs: 500, dieAtStep: 6, timeoutMs };
  const runIds: string[] = [];
  const messages: unknown[] = [];
  for (let done = 0; done < n; done += 100) {
    const r = await client.bench<{ runIds: string[]; messages: unknown[] }>("/create", {
      workspaceId: WORKSPACE,
      type: "demo.work",
      input,
      count: Math.min(100, n - done),
    });
    runIds.push(...r.runIds);
    messages.push(...r.messages);
  }
  return { runIds, messages };
}

/** Deliver in batches of 10; `spreadMs` spaces the batches out. Returns the in-flight deliveries. */
function deliver(dev: DevServer, messages: unknown[], spreadMs: number, abort: AbortSignal): Promise<unknown>[] {
  const batches: unknown[][] = [];
  for (let i = 0; i < messages.length; i += 10) batches.push(messages.slice(i, i + 10));
  return batches.map(async (batch, i) => {
    if (spreadMs > 0) await sleep(Math.round((i * spreadMs) / batches.length));
    try {
      // Answers only when the batch's attempts end (their timeout); the instance is stopped first.
      await fetch(`${dev.base}/__bench/deliver`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages: batch, attempts: 1 }),
        signal: abort,
      });
    } catch {
      // aborted at the end of the figure, by design
    }
  });
}

export async function detection(path: "tracker" | "sweep", n: number): Promise<DetectionResult> {
  const vars: Record<string, string> = path === "sweep" ? { BENCH_TRACKER_ALARM: "off" } : {};
  return withInstance(`detection-${path}`, vars, async (dev, client) => {
    const started = Date.now();
    // Tracker path: the timeout (60 s) is far beyond detection (~5 s). Sweep path:
    // the policy maximum, so the attempt's own timeout never beats the sweep.
    const { runIds, messages } = await createDyingRuns(client, n, path === "sweep" ? 300_000 : 60_000);
    const abort = new AbortController();
    const sweeps: Record<string, unknown>[] = [];
    const off = dev.onLog((e) => {
      if (e.event === "sweep.completed") sweeps.push(e.fields);
    });
    const cron = path === "sweep" ? emulateCron(client) : null;
    const inFlight = deliver(dev, messages, path === "sweep" ? 60_000 : 0, abort.signal);
    const detectAction = path === "tracker" ? "'run.attempt_lost', 'run.reconciled'" : "'run.reconciled'";
    try {
      await waitFor(`${n} runs detected (${path} path)`, path === "sweep" ? 330_000 : 120_000, 1_000, async () => {
        const [row] = await client.sql<{ n: number }>(
          `SELECT COUNT(DISTINCT subject_id) AS n FROM audit_events WHERE workspace_id = ? AND action IN (${detectAction})`,
          [WORKSPACE],
        );
        return (row?.n ?? 0) >= n ? true : undefined;
      });
    } finally {
      cron?.stop();
    }
    // The first detection event of each run, and each tracker's record of its last heartbeat.
    const events = await client.sql<EventRow>(
      `SELECT subject_id, action, created_at, metadata FROM audit_events
        WHERE workspace_id = ? AND action IN (${detectAction}) ORDER BY id`,
      [WORKSPACE],
    );
    const first = new Map<string, EventRow>();
    for (const e of events) if (!first.has(e.subject_id)) first.set(e.subject_id, e);
    const lastHeartbeat = new Map<string, number>();
    if (path === "tracker") {
      for (const [id, e] of first) {
        const meta = JSON.parse(e.metadata) as { evidence?: { lastHeartbeatAt?: number } };
        if (typeof meta.evidence?.lastHeartbeatAt === "number") lastHeartbeat.set(id, meta.evidence.lastHeartbeatAt);
      }
    } else {
      // The alarms were off, so each tracker still holds the last heartbeat it received.
      for (let i = 0; i < runIds.length; i += 100) {
        const r = await client.bench<{ trackers: { runId: string; status: { known: boolean; state?: { lastHeartbeatAt: number | null } } }[] }>(
          "/trackers",
          { runIds: runIds.slice(i, i + 100) },
        );
        for (const t of r.trackers) if (t.status.state?.lastHeartbeatAt) lastHeartbeat.set(t.runId, t.status.state.lastHeartbeatAt);
      }
    }
    const sinceLast: number[] = [];
    for (const id of runIds) {
      const e = first.get(id);
      const hb = lastHeartbeat.get(id);
      if (e && hb !== undefined) sinceLast.push(e.created_at - hb);
    }
    const runs = await client.sql<{ status: string; reason_code: string | null; reconciled_by: string | null; started_at: number; last_heartbeat_at: number }>(
      "SELECT status, reason_code, reconciled_by, started_at, last_heartbeat_at FROM operation_runs WHERE workspace_id = ?",
      [WORKSPACE],
    );
    const outcomes: Record<string, number> = {};
    for (const r of runs) {
      const key = `${r.status}${r.reason_code ? ` ${r.reason_code}` : ""}${r.reconciled_by ? ` (${r.reconciled_by})` : ""}`;
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    // Heartbeats each attempt sent before it died: (last heartbeat − claim) / interval.
    const interval = DEMO_POLICY.heartbeatIntervalMs;
    const beats = await client.sql<{ started_at: number; id: string }>(
      "SELECT id, started_at FROM operation_runs WHERE workspace_id = ?",
      [WORKSPACE],
    );
    const heartbeats = beats.flatMap((b) => {
      const hb = lastHeartbeat.get(b.id);
      return hb === undefined ? [] : [Math.round((hb - b.started_at) / interval)];
    });
    off();
    abort.abort();
    void Promise.allSettled(inFlight);
    return {
      path,
      n,
      detected: first.size,
      latency: summarize(sinceLast.map((v) => v - HEARTBEAT_TIMEOUT_MS)),
      sinceLastHeartbeat: summarize(sinceLast),
      outcomes,
      heartbeatsBeforeDeath: summarize(heartbeats),
      sweeps: sweeps.map((s) => ({
        examined: s.examined,
        reconciled: s.reconciled,
        rowsRead: s.rowsRead,
        rowsWritten: s.rowsWritten,
        durationMs: s.durationMs,
        stoppedBy: s.stoppedBy,
      })),
      wallMs: Date.now() - started,
    };
  });
}
