/**
 * The cron entry (every minute): the reconciliation sweep, then retention.
 * It refuses to act on invalid configuration, naming the variable, instead of
 * running on it. A violated timing contract does not stop it: the sweep keeps
 * converging accepted runs while the API refuses new ones (contract section 5).
 */
import { runtimeConfig } from "../config";
import { log } from "../log";
import { redriveWebhooks } from "../webhooks/redrive";
import { purgeExpired } from "./retention";
import { runSweep, type SweepOptions } from "./sweep";

export interface ScheduledDeps {
  sweep?: Partial<SweepOptions>;
}

const DAY_MS = 86_400_000;

export async function handleScheduled(
  controller: Pick<ScheduledController, "scheduledTime" | "cron">,
  env: Env,
  deps: ScheduledDeps = {},
): Promise<void> {
  const config = runtimeConfig(env);
  const sweep = await runSweep(env.DB, env, {
    batchSize: config.SWEEP_BATCH_SIZE,
    budgetMs: config.SWEEP_BUDGET_MS,
    ...deps.sweep,
  });
  // One structured line per sweep: what it examined, decided and cost.
  log.info("sweep.completed", {
    cron: controller.cron,
    scheduledTime: controller.scheduledTime,
    examined: sweep.examined,
    reconciled: sweep.reconciled,
    refreshed: sweep.refreshed,
    vouched: sweep.vouched,
    adopted: sweep.adopted,
    lostRace: sweep.lostRace,
    trackerUnavailable: sweep.trackerUnavailable,
    failed: sweep.failed,
    batches: sweep.batches,
    stoppedBy: sweep.stoppedBy,
    rowsRead: sweep.d1.rowsRead,
    rowsWritten: sweep.d1.rowsWritten,
    durationMs: sweep.durationMs,
  });
  const retention = await purgeExpired(env.DB, {
    now: Date.now(),
    retentionMs: config.RETENTION_DAYS * DAY_MS,
    scheduledTime: controller.scheduledTime,
  });
  if (retention.runsDeleted > 0 || retention.eventsDeleted > 0 || retention.countersDeleted > 0) {
    log.info("retention.purged", {
      runsDeleted: retention.runsDeleted,
      eventsDeleted: retention.eventsDeleted,
      countersDeleted: retention.countersDeleted,
      rowsRead: retention.d1.rowsRead,
      rowsWritten: retention.d1.rowsWritten,
    });
  }
  // Webhook tries whose message was lost, and settled deliveries past retention.
  try {
    const webhooks = await redriveWebhooks(env, { now: Date.now(), retentionMs: config.RETENTION_DAYS * DAY_MS });
    if (webhooks.redriven > 0 || webhooks.purged > 0) log.info("webhooks.cron", { redriven: webhooks.redriven, purged: webhooks.purged });
  } catch (error) {
    log.error("webhooks.cron_failed", { error, consequence: "retried at the next cron run" });
  }
}
