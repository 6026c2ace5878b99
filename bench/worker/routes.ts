/**
 * `/__bench/*`: what the harness asks of the bench Worker. Bench only (this
 * file is bundled only by bench/wrangler.bench.toml), loopback only (the
 * harness binds wrangler dev to 127.0.0.1). Request bodies are the harness's
 * own, still checked with zod rather than cast.
 */
import { z } from "zod";
import { DEFAULT_SETTINGS } from "../../src/lifecycle";
import { operationTypes, policyFor } from "../../src/operations";
import { pollOperations, stateAfterPage } from "../../src/admin/live";
import { operationsPage } from "../../src/admin/queries";
import { enqueueRun } from "../../src/queue/producer";
import { operationMessageFor } from "../../src/queue/messages";
import { RunService } from "../../src/runs";
import { trackerFor } from "../../src/tracker";
import { counters, instrumentEnv, resetCounters, type BenchEnv } from "./instrument";
import { benchQueue } from "./queue";

const sqlBody = z.object({ sql: z.string().min(1), params: z.array(z.union([z.string(), z.number(), z.null()])).default([]) });

const createBody = z.object({
  workspaceId: z.string().min(1),
  type: z.string().min(1),
  input: z.unknown(),
  count: z.number().int().min(1).max(1000),
});

const deliverBody = z.object({
  queue: z.string().default("operations"),
  attempts: z.number().int().min(1).default(1),
  messages: z.array(z.unknown()).min(1).max(100),
});

const runIdsBody = z.object({ runIds: z.array(z.string()).min(1).max(1000) });

const pageBody = z.object({
  workspaceId: z.string().min(1),
  before: z.string().optional(),
  limit: z.number().int().min(1).max(100).default(25),
});

const json = (data: unknown, status = 200) => Response.json(data, { status });

async function body<T>(request: Request, schema: z.ZodType<T>): Promise<T> {
  return schema.parse(await request.json());
}

/** Run `fn` over `items` with at most `limit` in flight. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export async function handleBenchRequest(request: Request, url: URL, env: BenchEnv, ctx: ExecutionContext): Promise<Response> {
  try {
    return await route(request, url, env, ctx);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return json({ error: message }, error instanceof z.ZodError ? 400 : 500);
  }
}

async function route(request: Request, url: URL, env: BenchEnv, ctx: ExecutionContext): Promise<Response> {
  const path = url.pathname.slice("/__bench".length);
  switch (`${request.method} ${path}`) {
    case "GET /ping":
      return json({ ok: true, types: operationTypes(), trackerAlarm: env.BENCH_TRACKER_ALARM ?? "on" });

    case "GET /counters":
      return json({ ...counters, at: Date.now() });

    case "POST /counters/reset":
      resetCounters();
      return json({ ok: true });

    // Raw SQL on the uncounted D1 binding: seeding, polling and collecting results.
    case "POST /sql": {
      const q = await body(request, sqlBody);
      const started = Date.now();
      const res = await env.DB.prepare(q.sql).bind(...q.params).all();
      return json({ results: res.results, meta: res.meta, ms: Date.now() - started });
    }

    // Accept runs through production's enqueueRun and return each run's first
    // dispatch message: the harness delivers it itself. The run's tracker sends
    // it too (it is the outbox); whichever copy arrives second starts nothing.
    case "POST /create": {
      const q = await body(request, createBody);
      const sent: unknown[] = [];
      const capture = instrumentEnv(env);
      const service = new RunService(capture.DB, { policyFor, settings: DEFAULT_SETTINGS });
      const runIds = await pool(Array.from({ length: q.count }, (_, i) => i), 8, async () => {
        const { answer } = await enqueueRun(capture, service, {
          workspaceId: q.workspaceId,
          type: q.type,
          input: q.input,
          initiator: "user:bench",
        });
        if (!answer.ok) throw new Error("create refused");
        sent.push(operationMessageFor(answer.run, 1));
        return answer.run.id;
      });
      return json({ runIds, messages: sent });
    }

    // Deliver messages to the production consumer as one batch, as the queue would
    // (one delivery per message, `attempts` as its delivery count). Answers when
    // the batch is settled, i.e. when every attempt in it has ended.
    case "POST /deliver": {
      const q = await body(request, deliverBody);
      const settled: Record<string, "ack" | "retry" | "none"> = {};
      const messages = q.messages.map((m, i) => {
        const id = `bench-${Date.now()}-${i}-${crypto.randomUUID()}`;
        settled[id] = "none";
        return {
          id,
          timestamp: new Date(),
          body: m,
          attempts: q.attempts,
          ack: () => void (settled[id] = "ack"),
          retry: () => void (settled[id] = "retry"),
        } satisfies Message<unknown>;
      });
      const batch = {
        queue: q.queue,
        messages,
        metadata: { metrics: { backlogCount: 0, backlogBytes: 0 } },
        ackAll: () => {},
        retryAll: () => {},
      } satisfies MessageBatch<unknown>;
      await benchQueue(batch, env, ctx);
      return json({ settled: Object.values(settled) });
    }

    case "POST /trackers": {
      const q = await body(request, runIdsBody);
      const states = await pool(q.runIds, 16, async (runId) => ({ runId, status: await trackerFor(env, runId).status() }));
      return json({ trackers: states });
    }

    // A second copy of each run's current dispatch message: a duplicate delivery.
    case "POST /duplicate": {
      const q = await body(request, runIdsBody);
      const service = new RunService(env.DB, { policyFor, settings: DEFAULT_SETTINGS });
      let sent = 0;
      for (const runId of q.runIds) {
        const run = await service.getById(runId);
        const tracked = await trackerFor(env, runId).status();
        if (!run || !tracked.known) continue;
        await instrumentEnv(env).OPERATIONS_QUEUE.send(operationMessageFor(run, tracked.state.dispatch.n), { contentType: "json" });
        sent++;
      }
      return json({ sent });
    }

    // One message to the bare consumer's queue.
    case "POST /bare": {
      const id = crypto.randomUUID();
      await instrumentEnv(env).BARE_QUEUE.send({ id, sentAt: Date.now() }, { contentType: "json" });
      return json({ id }, 202);
    }

    // The admin operations page's data, as production's operationsPage reads it.
    case "POST /operations-page": {
      const q = await body(request, pageBody);
      const started = Date.now();
      const page = await operationsPage(
        env.DB,
        q.workspaceId,
        { limit: q.limit, ...(q.before ? { before: q.before } : {}) },
        Date.now(),
      );
      const ms = Date.now() - started;
      // The next live poll when nothing transitioned since: what an open tab costs every 2-10 s.
      const filter = { limit: q.limit, ...(q.before ? { before: q.before } : {}) };
      const poll = await pollOperations(env.DB, q.workspaceId, filter, stateAfterPage(page.changeToken, page, 0), Date.now());
      return json({
        ms,
        rows: page.runs.length,
        firstId: page.runs[0]?.id ?? null,
        lastId: page.runs.at(-1)?.id ?? null,
        nextCursor: page.nextCursor,
        tiles: page.tiles,
        d1: page.d1,
        poll: { kind: poll.kind, liveRows: poll.state.live.length, d1: poll.d1 },
      });
    }
  }
  return json({ error: `no bench route ${request.method} ${path}` }, 404);
}
