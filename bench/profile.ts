/**
 * `npm run bench:profile`: where the local runtime's CPU goes in figure 5's
 * rounds (bench/figures/throughput.ts). One fresh bench instance; after a
 * warm-up round, the V8 sampling profiler of the Worker's isolate (the Worker,
 * its Durable Objects and its queue consumers share it) records one round of
 * `--kind` (noop runs end to end, or bare messages). Prints milliseconds per
 * item: idle, native code ("(program)": SQLite, RPC, sockets), garbage
 * collection and a top-down tree of the JavaScript; writes the raw profile to
 * bench/results/profile-<kind>-<time>.cpuprofile (Chrome DevTools, Performance
 * panel, opens it).
 *
 *   npm run bench:profile                       300 noop runs
 *   npm run bench:profile -- --kind=bare --n=500 --depth=4
 *   npm run bench:profile -- --storage=memory    the instance's state in /dev/shm
 *
 * Sampling adds overhead of its own: the per-item figures here are larger than
 * figure 5's, and are for comparing parts, not for publishing a rate.
 * It attaches through wrangler's inspector proxy, which accepts only a local
 * `Origin` (wrangler's InspectorProxyWorker), over the Chrome DevTools Protocol
 * `Profiler` domain (https://chromedevtools.github.io/devtools-protocol/tot/Profiler/).
 * Exits 2 on bad arguments.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { bareRound, runsRound } from "./figures/throughput";
import { memoryStateAvailable, withInstance } from "./lib/instance";
import { RESULTS_DIR } from "./lib/results";

function usage(message: string): never {
  console.error(`bench:profile: ${message}\nusage: npm run bench:profile -- [--kind=runs|bare] [--storage=disk|memory] [--n=300] [--depth=3] [--interval-us=200]`);
  process.exit(2);
}

const { values: args } = (() => {
  try {
    return parseArgs({
      options: {
        kind: { type: "string", default: "runs" },
        storage: { type: "string", default: "disk" },
        n: { type: "string", default: "300" },
        depth: { type: "string", default: "3" },
        "interval-us": { type: "string", default: "200" },
      },
      strict: true,
    });
  } catch (e) {
    usage(e instanceof Error ? e.message : String(e));
  }
})();

const kind = args.kind;
if (kind !== "runs" && kind !== "bare") usage(`--kind must be runs or bare, got "${kind}"`);
const storage = args.storage;
if (storage !== "disk" && storage !== "memory") usage(`--storage must be disk or memory, got "${storage}"`);
if (storage === "memory" && !memoryStateAvailable()) usage("--storage=memory needs a writable /dev/shm, and this machine has none");
const positive = (raw: string, what: string) => {
  const v = Number(raw);
  if (!Number.isInteger(v) || v < 1) usage(`${what} must be a positive integer, got "${raw}"`);
  return v;
};
const n = positive(args.n, "--n");
const depth = positive(args.depth, "--depth");
const intervalUs = positive(args["interval-us"], "--interval-us");

/** The profile's own root entries, printed in the summary line rather than the tree. */
const SUMMED = ["(idle)", "(program)", "(garbage collector)"];

/** The parts of a CDP `Profiler.Profile` this reads. */
interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }[];
  samples: number[];
  timeDeltas: number[];
}

/** A minimal Chrome DevTools Protocol session: `call` sends a command and resolves with its result. */
async function devtools(port: number): Promise<{ call<T>(method: string, params?: object): Promise<T>; close(): void }> {
  const list = (await (await fetch(`http://127.0.0.1:${port}/json`)).json()) as { webSocketDebuggerUrl: string }[];
  const url = list[0]?.webSocketDebuggerUrl;
  if (!url) throw new Error(`the inspector on port ${port} lists no target`);
  // Node's WebSocket (undici) takes headers as a second-argument option; wrangler's proxy wants a local Origin.
  const ws = new WebSocket(url, { headers: { Origin: "http://localhost" } } as unknown as string[]);
  ws.binaryType = "arraybuffer";
  await new Promise<void>((ok, fail) => {
    ws.addEventListener("open", () => ok(), { once: true });
    ws.addEventListener("error", () => fail(new Error(`could not attach to ${url}`)), { once: true });
  });
  const waiting = new Map<number, { ok(v: unknown): void; fail(e: Error): void }>();
  ws.addEventListener("message", (e) => {
    const text = typeof e.data === "string" ? e.data : new TextDecoder().decode(e.data as ArrayBuffer);
    const m = JSON.parse(text) as { id?: number; result?: unknown; error?: { message: string } };
    const w = m.id !== undefined ? waiting.get(m.id) : undefined;
    if (!w) return;
    waiting.delete(m.id!);
    if (m.error) w.fail(new Error(m.error.message));
    else w.ok(m.result);
  });
  let id = 0;
  return {
    call: <T>(method: string, params: object = {}) =>
      new Promise<T>((ok, fail) => {
        id += 1;
        waiting.set(id, { ok: ok as (v: unknown) => void, fail });
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

/** Inclusive time per node (µs), and a label per call frame. */
function summarise(profile: CpuProfile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const total = new Map<number, number>();
  const sum = (id: number): number => {
    const t = (byId.get(id)?.children ?? []).reduce((a, c) => a + sum(c), self.get(id) ?? 0);
    total.set(id, t);
    return t;
  };
  const root = profile.nodes[0]!.id;
  const all = sum(root);
  const label = (id: number) => {
    const f = byId.get(id)!.callFrame;
    return `${f.functionName || "(anonymous)"} ${f.url.split("/").at(-1) ?? ""}:${f.lineNumber + 1}`;
  };
  return { byId, total, root, all, label };
}

await withInstance(`profile-${storage}`, {}, async (dev, client) => {
  const round = (count: number) => (kind === "runs" ? runsRound(client, count) : bareRound(client, count));
  await round(20);
  const session = await devtools(dev.inspectorPort);
  try {
    await session.call("Profiler.enable");
    await session.call("Profiler.setSamplingInterval", { interval: intervalUs });
    await session.call("Profiler.start");
    const measured = await round(n);
    const { profile } = await session.call<{ profile: CpuProfile }>("Profiler.stop");

    mkdirSync(RESULTS_DIR, { recursive: true });
    const stamp = new Date().toISOString().replaceAll(":", "-").replace(/\.\d+Z$/, "Z");
    const file = resolve(RESULTS_DIR, `profile-${kind}-${stamp}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));

    const { byId, total, root, all, label } = summarise(profile);
    const per = (us: number) => `${(us / 1000 / n).toFixed(2).padStart(6)} ms`;
    const top = byId.get(root)!.children ?? [];
    const named = (name: string) => top.filter((id) => byId.get(id)!.callFrame.functionName === name).reduce((a, id) => a + total.get(id)!, 0);
    const idle = named("(idle)");
    console.log(`${n} ${kind}, ${measured.perSecond.toFixed(1)}/s while profiled; per item (ms):`);
    console.log(`${per(all)} recorded, ${per(all - idle)} busy: ${per(named("(program)"))} native (program), ${per(named("(garbage collector)"))} GC, ${per(idle)} idle`);
    // Top-down, merging siblings with the same frame: where each task's time went.
    const walk = (ids: number[], level: number) => {
      const merged = new Map<string, { t: number; ids: number[] }>();
      for (const id of ids) {
        const e = merged.get(label(id)) ?? { t: 0, ids: [] };
        e.t += total.get(id)!;
        e.ids.push(id);
        merged.set(label(id), e);
      }
      for (const [name, e] of [...merged].sort((a, b) => b[1].t - a[1].t).slice(0, level === 0 ? 40 : 8)) {
        if (e.t / 1000 / n < 0.05 || SUMMED.includes(byId.get(e.ids[0]!)!.callFrame.functionName)) continue;
        console.log(`${per(e.t)} ${"  ".repeat(level)}${name}`);
        if (level + 1 < depth) walk(e.ids.flatMap((id) => byId.get(id)!.children ?? []), level + 1);
      }
    };
    walk(top, 0);
    console.log(`wrote ${file}`);
  } finally {
    session.close();
  }
}, storage);
