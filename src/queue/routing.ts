/** TEMPORARY stub until the routing branch lands (issue 9b). */
export class UnknownQueueError extends Error {
  override name = "UnknownQueueError";
}
export function producerFor(env: Env, queue: string): Queue<unknown> {
  if (queue === "operations") return env.OPERATIONS_QUEUE;
  throw new UnknownQueueError(`no producer binding for queue "${queue}"`);
}
export type QueueRole = "operations" | "dead_letter" | "foreign";
