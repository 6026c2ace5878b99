/** Wiring only: the Worker's entry points and the Durable Object class. */
import { app } from "./app";
import { deadLetterQueues } from "./contract-runtime";
import { handleDeadLetterBatch } from "./queue/dead-letter";
import { handleOperationsBatch } from "./queue/consumer";
import { handleScheduled } from "./sweep/scheduled";

export { RunTracker } from "./tracker/run-tracker";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env, _ctx?: ExecutionContext) {
    if (deadLetterQueues().has(batch.queue)) await handleDeadLetterBatch(batch, env);
    else await handleOperationsBatch(batch, env);
  },
  async scheduled(controller: ScheduledController, env: Env, _ctx?: ExecutionContext) {
    await handleScheduled(controller, env);
  },
} satisfies ExportedHandler<Env, unknown>;
