/**
 * Which Chromium the browser tests drive. In this order:
 *
 *  1. `CHROMIUM_PATH`, when set. It must exist: a path someone chose is never
 *     silently swapped for another browser.
 *  2. A system Chromium or Google Chrome at its usual place: on `PATH` (Linux),
 *     in /Applications (macOS), under Program Files or the user's AppData
 *     (Windows).
 *  3. On Linux x64 only, the Chromium inside the `@sparticuz/chromium`
 *     devDependency, so `npm install && npm test` needs nothing else. The
 *     package ships it brotli-compressed (Linux x64 is the only build it
 *     carries); it is decompressed once, into
 *     `node_modules/.cache/oplife-chromium/<version>/`.
 *
 * Otherwise it throws, saying how to provide one. playwright-core drives any
 * of them: it needs an executable, never its own downloaded browsers.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { delimiter, dirname, join, posix, resolve, win32 } from "node:path";
import { ROOT } from "./wrangler";

export const PACKAGED = "@sparticuz/chromium";
/** Where the packaged Chromium is decompressed, one folder per package version. */
export const CACHE = resolve(ROOT, "node_modules/.cache/oplife-chromium");
/** Decompressing ~200 MB takes a few seconds alone; far longer on a busy machine. */
const EXTRACT_TIMEOUT_MS = 180_000;

export type ChromiumSource = "CHROMIUM_PATH" | "system" | typeof PACKAGED;

export interface FoundChromium {
  path: string;
  source: ChromiumSource;
}

export type Choice = FoundChromium | { source: typeof PACKAGED; path?: undefined };

export interface Host {
  env: NodeJS.ProcessEnv;
  platform: NodeJS.Platform;
  arch: string;
  exists(path: string): boolean;
}

/** Usual places of a system Chromium or Chrome on `platform`, most specific first. */
export function systemCandidates(env: NodeJS.ProcessEnv, platform: NodeJS.Platform): string[] {
  if (platform === "darwin") {
    const apps = ["/Applications", ...(env.HOME ? [posix.join(env.HOME, "Applications")] : [])];
    return apps.flatMap((dir) => [
      posix.join(dir, "Chromium.app/Contents/MacOS/Chromium"),
      posix.join(dir, "Google Chrome.app/Contents/MacOS/Google Chrome"),
    ]);
  }
  if (platform === "win32") {
    const roots = [env.LOCALAPPDATA, env.PROGRAMFILES, env["PROGRAMFILES(X86)"]].filter((r): r is string => !!r);
    return roots.flatMap((root) => [
      win32.join(root, "Chromium", "Application", "chrome.exe"),
      win32.join(root, "Google", "Chrome", "Application", "chrome.exe"),
    ]);
  }
  // Linux and the other Unixes: the names distributions install on PATH.
  const names = ["chromium", "chromium-browser", "google-chrome-stable", "google-chrome"];
  const dirs = (env.PATH ?? "").split(delimiter).filter(Boolean);
  return names.flatMap((name) => dirs.map((dir) => posix.join(dir, name)));
}

/**
 * The order above, without touching the disk beyond `host.exists`. Returns
 * a path, or `{ source: "@sparticuz/chromium" }` when the packaged one must
 * be decompressed. Throws when `CHROMIUM_PATH` names nothing, or when there is
 * no browser and no packaged one for this platform.
 */
export function chooseChromium(host: Host): Choice {
  const chosen = host.env.CHROMIUM_PATH;
  if (chosen) {
    if (!host.exists(chosen)) throw new Error(`CHROMIUM_PATH is ${chosen}, which does not exist. Point it at a Chromium or Chrome executable, or unset it.`);
    return { path: chosen, source: "CHROMIUM_PATH" };
  }
  const system = systemCandidates(host.env, host.platform).find((p) => host.exists(p));
  if (system) return { path: system, source: "system" };
  if (host.platform === "linux" && host.arch === "x64") return { source: PACKAGED };
  throw new Error(
    `No Chromium or Chrome found for the browser tests. ${PACKAGED} carries a Linux x64 build only, and this is ${host.platform} ${host.arch}. ` +
      `Install Google Chrome or Chromium in its usual place, or set CHROMIUM_PATH to its executable.`,
  );
}

/** Find (and if needed decompress) the Chromium the browser tests drive. */
export async function findChromium(): Promise<FoundChromium> {
  const choice = chooseChromium({ env: process.env, platform: process.platform, arch: process.arch, exists: existsSync });
  return choice.path !== undefined ? choice : { path: await packagedChromium(), source: PACKAGED };
}

function packagedVersion(): string {
  // The package's exports hide its package.json; its entry point sits in build/, one level below it.
  const entry = createRequire(import.meta.url).resolve(PACKAGED);
  const pkg: unknown = JSON.parse(readFileSync(resolve(dirname(entry), "../package.json"), "utf8"));
  const version = typeof pkg === "object" && pkg !== null && "version" in pkg ? pkg.version : undefined;
  if (typeof version !== "string") throw new Error(`${PACKAGED}'s package.json has no version`);
  return version;
}

/**
 * The packaged Chromium, decompressed into CACHE/<version>/chromium (with the
 * SwiftShader libraries it loads from beside itself).
 *
 * The package's executablePath() decompresses into os.tmpdir() and reuses
 * whatever `chromium` it finds there, from any version, even half-written by a
 * run beside this one. So it runs in a child process whose TMPDIR is a fresh
 * staging folder, and the finished folder is renamed into place: a version
 * folder exists only complete, and two runs racing both end up with one.
 */
async function packagedChromium(): Promise<string> {
  const version = packagedVersion();
  const dir = join(CACHE, version);
  const exe = join(dir, "chromium");
  if (existsSync(exe)) return exe;

  mkdirSync(CACHE, { recursive: true });
  const staging = mkdtempSync(join(CACHE, `.staging-${version}-`));
  try {
    const script = `const { default: chromium } = await import(${JSON.stringify(PACKAGED)}); process.stdout.write(await chromium.executablePath());`;
    const out = await runNode(["--input-type=module", "-e", script], { ...process.env, TMPDIR: staging, TMP: staging, TEMP: staging });
    if (out !== join(staging, "chromium")) throw new Error(`${PACKAGED} decompressed to ${JSON.stringify(out)}, not into ${staging}`);
    try {
      renameSync(staging, dir);
    } catch (e) {
      // Another run renamed its copy first: same version, same bytes.
      if (!existsSync(exe)) throw e;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  // Earlier versions' copies (~200 MB each) are of no further use; staging folders may be another run's.
  for (const name of readdirSync(CACHE)) {
    if (name !== version && !name.startsWith(".")) rmSync(join(CACHE, name), { recursive: true, force: true });
  }
  return exe;
}

/** `node <args>` with this process's node, in the project root; resolves with its stdout. */
function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolveOut, reject) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), EXTRACT_TIMEOUT_MS);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolveOut(stdout);
      else reject(new Error(`decompressing ${PACKAGED} failed (${signal ? `killed by ${signal} after ${EXTRACT_TIMEOUT_MS} ms` : `exit ${code}`}):\n${stderr}`));
    });
  });
}
