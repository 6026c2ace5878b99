import { DurableObject } from "cloudflare:workers";

export class RunTracker extends DurableObject<Env> {
  async ping(): Promise<string> {
    return "pong";
  }
}
