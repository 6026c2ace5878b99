import { RunTracker } from "./tracker/run-tracker";

export { RunTracker };

export default {
  async fetch(): Promise<Response> {
    return new Response("ok");
  },
} satisfies ExportedHandler<Env>;
