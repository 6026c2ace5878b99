/**
 * Which queue a run travels on, and what a batch's queue is to this Worker.
 *
 * A type's policy names its queue (`policy.queue`); the producer binding for
 * that queue and the dead-letter queues come from the deployment generated
 * from wrangler.toml (`src/generated/deployment.ts`), so routing follows the
 * same settings the timing contract checks (T8 requires a producer and a
 * consumer for every queue that carries a type).
 */
import type { DeploymentSettings, LifecyclePolicy } from "../lifecycle";
import { DEPLOYMENT } from "../generated/deployment";
import { registeredPolicies } from "../operations";

/** Thrown when this Worker has no producer binding for a queue (a `[[queues.producers]]` entry is missing). */
export class UnknownQueueError extends Error {
  override name = "UnknownQueueError";
  constructor(
    readonly queue: string,
    detail: string,
  ) {
    super(`No producer for queue "${queue}" in this Worker: ${detail}`);
  }
}

function isQueue(value: unknown): value is Queue<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { send?: unknown }).send === "function";
}

/**
 * The producer binding for a queue name (from the generated deployment:
 * wrangler.toml's [[queues.producers]]). Throws UnknownQueueError naming the
 * queue if this Worker has no producer for it, or if the binding wrangler.toml
 * names is absent from `env`.
 */
export function producerFor(env: Env, queue: string, deployment: DeploymentSettings = DEPLOYMENT): Queue<unknown> {
  const producer = deployment.queueProducers.find((p) => p.queue === queue);
  if (!producer) {
    const known = deployment.queueProducers.map((p) => `"${p.queue}"`).join(", ") || "none";
    throw new UnknownQueueError(queue, `wrangler.toml declares producers for ${known}`);
  }
  // `Env` is generated with one property per binding; the name comes from the same wrangler.toml.
  const binding: unknown = (env as unknown as Record<string, unknown>)[producer.binding];
  if (!isQueue(binding)) throw new UnknownQueueError(queue, `its binding ${producer.binding} is not a queue in env`);
  return binding;
}

export type QueueRole = "operations" | "dead_letter" | "webhooks" | "foreign";

/** The producer binding of the webhook deliveries' queue (wrangler.toml): its queue is the webhooks consumer's. */
export const WEBHOOKS_BINDING = "WEBHOOKS_QUEUE";

/**
 * "operations": a queue that carries a registered type (policy.queue);
 * "dead_letter": the DLQ of such a queue; "webhooks": the queue of webhook
 * delivery tries (src/webhooks); "foreign": anything else (an
 * application's own queue): left alone.
 */
export function queueRole(
  queue: string,
  policies: Readonly<Record<string, LifecyclePolicy>> = registeredPolicies(),
  deployment: DeploymentSettings = DEPLOYMENT,
): QueueRole {
  const carrying = new Set(Object.values(policies).map((p) => p.queue));
  if (carrying.has(queue)) return "operations";
  if (deployment.queueProducers.some((p) => p.binding === WEBHOOKS_BINDING && p.queue === queue)) return "webhooks";
  const isDeadLetter = deployment.queueConsumers.some((c) => carrying.has(c.queue) && c.deadLetterQueue === queue);
  return isDeadLetter ? "dead_letter" : "foreign";
}
