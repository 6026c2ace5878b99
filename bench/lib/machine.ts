/** What the figures were measured on, printed with every table. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem, release, type } from "node:os";
import { createRequire } from "node:module";
import { ROOT } from "../../scripts/lib/project";

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGiB: number;
  os: string;
  node: string;
  wrangler: string;
  workerd: string;
  miniflare: string;
}

function versionOf(pkg: string): string {
  try {
    const require = createRequire(import.meta.url);
    return (JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), "utf8")) as { version: string }).version;
  } catch {
    return "unknown";
  }
}

export function machineInfo(): MachineInfo {
  return {
    cores: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${type()} ${release()}`,
    node: process.version,
    wrangler: versionOf("wrangler"),
    workerd: versionOf("workerd"),
    miniflare: versionOf("miniflare"),
  };
}

export function describeMachine(m: MachineInfo): string {
  return `${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.os}, Node ${m.node}, wrangler ${m.wrangler} (workerd ${m.workerd})`;
}

export interface SourceState {
  commit: string;
  /** Files under src/ that differ from the commit when the bench Worker was built. */
  modifiedSrc: string[];
}

/** Which code was measured: the commit and any uncommitted changes under src/. */
export function sourceState(): SourceState {
  const git = (args: string[]) => {
    try {
      return execFileSync("git", args, { cwd: ROOT, encoding: "utf8" }).trim();
    } catch {
      return "";
    }
  };
  return {
    commit: git(["rev-parse", "--short", "HEAD"]) || "unknown",
    modifiedSrc: git(["status", "--porcelain", "--", "src"]).split("\n").filter(Boolean).map((l) => l.slice(3)),
  };
}

export function describeSource(s: SourceState): string {
  return `commit ${s.commit}${s.modifiedSrc.length ? ` + ${s.modifiedSrc.length} uncommitted file(s) in src/` : ""}`;
}
