/**
 * The browser project's global setup: one `wrangler dev` for every browser
 * test file (starting it costs ~10 s; each file seeds its own workspace, so
 * files share no rows), and the Chromium they drive (found, or decompressed
 * from its npm package, once, meanwhile). Teardown ends wrangler's whole
 * process group, whether the tests passed or not.
 *
 * If either cannot start, the error is handed to the tests instead of thrown
 * here: a throw would abort the whole vitest run, the other projects too;
 * this way every browser test fails with the message and the rest still run.
 */
import type { TestProject } from "vitest/node";
import { findChromium, type FoundChromium } from "./chromium";
import { startLocalWorker } from "./local-worker";
import type { LocalWorker } from "./wrangler";

export type LocalWorkerState = { ok: true; worker: LocalWorker } | { ok: false; error: string };
export type ChromiumState = ({ ok: true } & FoundChromium) | { ok: false; error: string };

declare module "vitest" {
  export interface ProvidedContext {
    localWorker: LocalWorkerState;
    chromium: ChromiumState;
  }
}

async function chromiumState(): Promise<ChromiumState> {
  try {
    const found = await findChromium();
    console.log(`browser tests: Chromium from ${found.source}, ${found.path}`);
    return { ok: true, ...found };
  } catch (e) {
    const error = `No Chromium for the browser tests: ${e instanceof Error ? e.message : String(e)}`;
    console.error(error);
    return { ok: false, error };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const chromium = chromiumState();
  try {
    const { worker, stop } = await startLocalWorker();
    project.provide("localWorker", { ok: true, worker });
    project.provide("chromium", await chromium);
    return stop;
  } catch (e) {
    const error = `The browser tests' wrangler dev did not start: ${e instanceof Error ? e.message : String(e)}`;
    console.error(error);
    project.provide("localWorker", { ok: false, error });
    project.provide("chromium", await chromium);
    return async () => {};
  }
}
