/**
 * The bench Worker: the local build's entry points (src/index.local.ts:
 * production's plus demo.work and the fault hooks), unchanged, behind counting
 * bindings (instrument.ts), plus what only the benchmarks need:
 * - `bench.noop` in the registry (noop.ts, added as local builds add demo.work);
 * - a bare consumer on the `bench-bare` queue: one D1 write per message, the
 *   baseline of the throughput figure, in the same process as the real one;
 * - a RunTracker whose alarm can be switched off (BENCH_TRACKER_ALARM=off),
 *   for the sweep-path detection figure ("the trackers unable to act");
 * - `/__bench/*` routes (routes.ts) for the harness. This Worker only ever
 *   runs under `wrangler dev` on loopback, started by bench/lib/dev.ts.
 */
import production, { RunTracker as ProductionRunTracker } from "../../src/index.local";
import { registerLocalOperations, registerOperation } from "../../src/operations/registry";
import { counters, countingState, instrumentEnv, type BenchEnv } from "./instrument";
import { benchQueue } from "./queue";
import { benchNoop } from "./noop";
import { handleBenchRequest } from "./routes";

registerLocalOperations([registerOperation(benchNoop)]);

export class RunTracker extends ProductionRunTracker {
  constructor(ctx: DurableObjectState, env: BenchEnv) {
    super(ctx, instrumentEnv(env));
    // Production's methods reach storage through `this.ctx`; the runtime keeps the real state.
    Object.defineProperty(this, "ctx", { value: countingState(ctx), writable: false, configurable: true });
  }

  override async alarm(): Promise<void> {
    counters.doAlarms++;
    if ((this.env as BenchEnv).BENCH_TRACKER_ALARM === "off") {
      // The tracker cannot act: its alarm fires and does nothing (as if every
      // attempt to act failed). It still answers the sweep's status() call.
      counters.doAlarmsSuppressed++;
      return;
    }
    await super.alarm();
  }
}

export default {
  async fetch(request: Request, env: BenchEnv, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/__bench/")) return handleBenchRequest(request, url, env, ctx);
    return production.fetch(request, instrumentEnv(env), ctx);
  },
  queue: benchQueue,
  async scheduled(controller: ScheduledController, env: BenchEnv, ctx: ExecutionContext): Promise<void> {
    await production.scheduled(controller, instrumentEnv(env), ctx);
  },
} satisfies ExportedHandler<BenchEnv, unknown>;
