/** Wiring only: the Worker's entry points, the Durable Object class and the RPC entrypoint. */
import { app } from "./app";
import { handleQueue, refuseForeignBatch } from "./queue/handler";
import { handleScheduled } from "./sweep/scheduled";

export { RunTracker } from "./tracker/run-tracker";
// The API for other Workers, on a service binding (README: "Use it from your Worker").
export { OplifeRpc } from "./rpc/entrypoint";

export default {
  fetch: app.fetch,
  async queue(batch: MessageBatch<unknown>, env: Env, ctx?: ExecutionContext) {
    // A queue this Worker consumes that carries none of our types: not ours to ack.
    if (!(await handleQueue(batch, env, ctx))) refuseForeignBatch(batch);
  },
  async scheduled(controller: ScheduledController, env: Env, _ctx?: ExecutionContext) {
    await handleScheduled(controller, env);
  },
} satisfies ExportedHandler<Env, unknown>;
