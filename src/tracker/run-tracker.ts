/**
 * The per-run tracker (contract section 4.1): one SQLite-backed Durable
 * Object per run holds the live truth of its attempt — the lease (attempt
 * number), the last heartbeat, the deadline — and keeps one alarm at the
 * earliest deadline. Requests to one object are serialised by the runtime,
 * which makes it the natural place to fence attempts; every transition still
 * goes through the run service's compare-and-set in D1, so the tracker, the
 * sweep and the dead-letter bridge can never both win.
 */
import { DurableObject } from "cloudflare:workers";
import { DEFAULT_SETTINGS, type ExecutionReasonCode, type FinalOutcome, type Progress } from "../lifecycle";
import { policyFor } from "../operations";
import type { RunAnswer, RunRecord, RunService } from "../runs";
import { log } from "../log";
import { runServiceFor } from "../run-service";
import { alarmAction, nextAlarmAt, type TrackerState } from "./state";
import type { ClaimAnswer, HeartbeatReply, ReportAnswer, TrackerStatus } from "./protocol";

const STATE_KEY = "state";

export class RunTracker extends DurableObject<Env> {
  private state: TrackerState | null | undefined;

  private service(): RunService {
    return runServiceFor(this.env.DB);
  }

  private async load(): Promise<TrackerState | null> {
    if (this.state === undefined) this.state = (await this.ctx.storage.get<TrackerState>(STATE_KEY)) ?? null;
    return this.state;
  }

  /** Persist and re-arm the single alarm at the state's next deadline. */
  private async save(s: TrackerState): Promise<void> {
    this.state = s;
    await this.ctx.storage.put(STATE_KEY, s);
    await this.ctx.storage.setAlarm(nextAlarmAt(s, policyFor(s.type), Date.now()));
  }

  /** Mirror what D1 says after a transition or a refusal (D1 is the record; the tracker follows it). */
  private async follow(run: RunRecord): Promise<void> {
    const prev = await this.load();
    const sameAttempt = prev?.attempt === run.attempt && prev.status === run.status;
    await this.save({
      runId: run.id,
      type: run.type,
      status: run.status,
      attempt: run.attempt,
      lastHeartbeatAt: sameAttempt ? prev.lastHeartbeatAt : run.lastHeartbeatAt,
      lastFlushedAt: run.lastHeartbeatAt,
      progress: run.progress,
      queuedSince: run.status === "queued" ? queuedSinceOf(run) : (prev?.queuedSince ?? run.createdAt),
      completedAt: run.completedAt,
    });
  }

  /** Start tracking a newly accepted run: its queued deadline is armed now. Idempotent. */
  async track(run: { runId: string; type: string; createdAt: number }): Promise<void> {
    if (await this.load()) return;
    await this.save({
      runId: run.runId,
      type: run.type,
      status: "queued",
      attempt: 0,
      lastHeartbeatAt: null,
      lastFlushedAt: null,
      progress: null,
      queuedSince: run.createdAt,
      completedAt: null,
    });
  }

  /**
   * Claim attempt n for the consumer. A higher attempt takes over and fences
   * the older one; the same attempt while it holds the lease is a duplicate
   * delivery and must not run the handler.
   */
  async claim(req: { runId: string; attempt: number }): Promise<ClaimAnswer> {
    const s = await this.load();
    if (s?.status === "completed") return { ok: false, refusal: "terminal" };
    if (s && req.attempt < s.attempt) return { ok: false, refusal: "fenced" };
    if (s && req.attempt === s.attempt && s.status === "running") return { ok: false, refusal: "duplicate" };
    const answer = await this.service().claim(req.runId, req.attempt);
    if (answer.run) await this.follow(answer.run);
    if (!answer.ok) return { ok: false, refusal: answer.refusal };
    const run = answer.run;
    return {
      ok: true,
      takeover: answer.transition.takeover,
      run: {
        runId: run.id,
        workspaceId: run.workspaceId,
        type: run.type,
        inputJson: JSON.stringify(run.input),
        attempt: run.attempt,
        maxAttempts: run.maxAttempts,
        progress: run.progress,
      },
    };
  }

  /**
   * A heartbeat (with progress) from attempt n. Cheap by design: it lands in
   * this object's storage every time, and in D1 at most once per flush
   * interval. A fenced or terminal answer tells the attempt to abort.
   */
  async heartbeat(req: { attempt: number; progress?: Progress }): Promise<HeartbeatReply> {
    const s = await this.load();
    if (!s) return { ok: false, refusal: "not_found" };
    if (s.status === "completed") return { ok: false, refusal: "terminal" };
    if (s.status !== "running" || s.attempt !== req.attempt) return { ok: false, refusal: "fenced" };
    const now = Date.now();
    const next: TrackerState = { ...s, lastHeartbeatAt: now, progress: req.progress ?? s.progress };
    const due = s.lastFlushedAt === null || now - s.lastFlushedAt >= DEFAULT_SETTINGS.heartbeatFlushIntervalMs;
    if (due) {
      try {
        const flushed = await this.service().heartbeat({
          runId: s.runId,
          type: s.type,
          attempt: req.attempt,
          ...(next.progress ? { progress: next.progress } : {}),
        });
        if (!flushed.ok) {
          if (flushed.run) await this.follow(flushed.run);
          return { ok: false, refusal: flushed.refusal };
        }
        if (flushed.flushed) next.lastFlushedAt = now;
      } catch (error) {
        // D1 unavailable: the attempt is alive (this object knows it), so the
        // heartbeat still counts here; the flush is retried on the next one.
        log.error("tracker.heartbeat_flush_failed", { runId: s.runId, attempt: req.attempt, error });
      }
    }
    this.state = next;
    await this.ctx.storage.put(STATE_KEY, next);
    return { ok: true };
  }

  /** Attempt n returned a result. A fenced or late one is recorded by the service and changes nothing. */
  async complete(req: {
    runId: string;
    attempt: number;
    outcome: FinalOutcome;
    message?: string;
    progress?: Progress;
  }): Promise<ReportAnswer> {
    return this.report(
      await this.service().complete(req.runId, req.attempt, {
        outcome: req.outcome,
        ...(req.message !== undefined ? { message: req.message } : {}),
        ...(req.progress !== undefined ? { progress: req.progress } : {}),
      }),
    );
  }

  /** Attempt n threw or timed out. */
  async fail(req: { runId: string; attempt: number; reason: ExecutionReasonCode; retryable: boolean; message: string }): Promise<ReportAnswer> {
    return this.report(
      await this.service().failAttempt(req.runId, req.attempt, {
        reason: req.reason,
        retryable: req.retryable,
        error: req.message,
      }),
    );
  }

  private async report(answer: RunAnswer): Promise<ReportAnswer> {
    if (answer.run) await this.follow(answer.run);
    const status = answer.run?.status ?? null;
    return answer.ok ? { ok: true, status } : { ok: false, refusal: answer.refusal, status };
  }

  /** What the tracker knows, for the sweep to consult before it force-resolves. */
  async status(): Promise<TrackerStatus> {
    const s = await this.load();
    if (!s) return { known: false };
    const policy = policyFor(s.type);
    return { known: true, state: s, action: alarmAction(s, policy, Date.now()) };
  }

  /**
   * The sweep found the run overdue in D1. If this tracker holds a fresher
   * heartbeat than D1 (the flush lags by design), write it now so the D1
   * deadline moves and the sweep leaves a live attempt alone. Returns whether
   * D1 was refreshed. Twice is harmless: the forced write never moves the
   * stored heartbeat backwards, so a second call writes nothing.
   */
  async refresh(): Promise<{ refreshed: boolean }> {
    const s = await this.load();
    if (!s || s.status !== "running" || s.lastHeartbeatAt === null) return { refreshed: false };
    if (alarmAction(s, policyFor(s.type), Date.now()).kind !== "wait") return { refreshed: false };
    const answer = await this.service().heartbeat({
      runId: s.runId,
      type: s.type,
      attempt: s.attempt,
      ...(s.progress ? { progress: s.progress } : {}),
      force: true,
      at: s.lastHeartbeatAt,
    });
    if (!answer.ok) {
      if (answer.run) await this.follow(answer.run);
      return { refreshed: false };
    }
    this.state = { ...s, lastFlushedAt: s.lastHeartbeatAt };
    await this.ctx.storage.put(STATE_KEY, this.state);
    return { refreshed: answer.flushed };
  }

  /**
   * The one alarm, at the earliest deadline. Safe to run twice: each branch
   * re-reads the state and every transition is a compare-and-set in D1, so a
   * second run finds nothing left to do. A failing D1 write throws, and the
   * platform retries the alarm (with backoff) — that is the retry we want.
   */
  override async alarm(): Promise<void> {
    const s = await this.load();
    if (!s) return;
    const policy = policyFor(s.type);
    const now = Date.now();
    const action = alarmAction(s, policy, now);
    switch (action.kind) {
      case "wait":
        await this.ctx.storage.setAlarm(action.until);
        return;
      case "cleanup":
        this.state = null;
        await this.ctx.storage.deleteAll();
        return;
      case "heartbeat_lost": {
        const answer = await this.service().heartbeatLost(s.runId, s.attempt, {
          lastHeartbeatAt: action.lastHeartbeatAt,
          deadline: action.deadline,
          heartbeatTimeoutMs: policy.heartbeatTimeoutMs,
          detectedAt: now,
        });
        await this.settle(answer, s);
        return;
      }
      case "stale_queued": {
        const answer = await this.service().reconcile(s.runId, {
          detector: "tracker_alarm",
          reason: "lifecycle.stale_queued",
          observed: { status: "queued", attempt: s.attempt },
          evidence: {
            queuedSince: s.queuedSince,
            deadline: action.deadline,
            staleQueuedAfterMs: policy.staleQueuedAfterMs,
            detectedAt: now,
          },
        });
        await this.settle(answer, s);
        return;
      }
    }
  }

  private async settle(answer: RunAnswer, before: TrackerState): Promise<void> {
    if (answer.run) {
      await this.follow(answer.run);
      return;
    }
    // The run is gone from D1 (retention): nothing left to track.
    log.warn("tracker.run_missing", { runId: before.runId });
    this.state = null;
    await this.ctx.storage.deleteAll();
  }
}

function queuedSinceOf(run: RunRecord): number {
  // D1's queued deadline is queuedSince + staleQueuedAfterMs; invert it so both agree.
  return run.deadlineAt !== null ? run.deadlineAt - policyFor(run.type).staleQueuedAfterMs : run.createdAt;
}
