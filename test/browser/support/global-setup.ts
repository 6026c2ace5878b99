/**
 * The browser project's global setup: one `wrangler dev` for every browser
 * test file (starting it costs ~10 s; each file seeds its own workspace, so
 * files share no rows). Teardown ends its whole process group, whether the
 * tests passed or not.
 *
 * If it cannot start, the error is handed to the tests instead of thrown
 * here: a throw would abort the whole vitest run, the other projects too;
 * this way every browser test fails with the message and the rest still run.
 */
import type { TestProject } from "vitest/node";
import { startLocalWorker } from "./local-worker";
import type { LocalWorker } from "./wrangler";

export type LocalWorkerState = { ok: true; worker: LocalWorker } | { ok: false; error: string };

declare module "vitest" {
  export interface ProvidedContext {
    localWorker: LocalWorkerState;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  try {
    const { worker, stop } = await startLocalWorker();
    project.provide("localWorker", { ok: true, worker });
    return stop;
  } catch (e) {
    const error = `The browser tests' wrangler dev did not start: ${e instanceof Error ? e.message : String(e)}`;
    console.error(error);
    project.provide("localWorker", { ok: false, error });
    return async () => {};
  }
}
