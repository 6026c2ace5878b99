/**
 * `npm run check:lifecycle`: the timing contract (rules T1–T9, contract
 * section 5) for every registered operation type — production's and the
 * local build's (demo.work, src/local/), since both run against these queue
 * and cron settings — against the real
 * wrangler.toml read by wrangler's own reader. The registry is bundled, not
 * imported, so operation files may use `cloudflare:*` modules
 * (scripts/lib/registry.ts). Exit 0 when every rule holds,
 * 1 on a violation or a stale src/generated/deployment.ts, 2 on bad arguments.
 *
 *   --config <path>              check against another wrangler config file
 *   --registry <path>            read the types from another registry module
 *                                (one exporting registeredPolicies(); for tests)
 *   --override <type>.<field>=N  change one policy number for this run only
 *                                (repeatable; for tests and what-ifs, never saved)
 */
import { resolve } from "node:path";
import { checkTimingContract, describeViolation, RULES, type ContractCheck } from "../src/lifecycle/contract";
import { DEFAULT_SETTINGS, type LifecyclePolicy } from "../src/lifecycle/policy";
import { loadRegisteredPolicies, NUMERIC_FIELDS, REGISTRY_MODULE, type NumericField } from "./lib/registry";
import { generatedDeploymentStatus, readDeployment } from "./lib/wrangler-deployment";
import { shown, UsageError, WRANGLER_TOML } from "./lib/project";

const USAGE = "usage: check-lifecycle [--config <wrangler config>] [--registry <module>] [--override <type>.<field>=<integer>]...";

interface Override {
  raw: string;
  type: string;
  field: NumericField;
  value: number;
}

interface Args {
  configPath: string;
  registryPath: string;
  /** As given; checked against the registry's types once it is loaded. */
  overrides: string[];
}

function isNumericField(s: string): s is NumericField {
  return (NUMERIC_FIELDS as readonly string[]).includes(s);
}

/** `demo.work.timeoutMs=900000`: the type may itself contain dots, so the field is after the last one. */
function parseOverride(raw: string, policies: Record<string, LifecyclePolicy>): Override {
  const eq = raw.indexOf("=");
  const key = raw.slice(0, Math.max(eq, 0)).trim();
  const dot = key.lastIndexOf(".");
  if (eq < 0 || dot <= 0) {
    throw new UsageError(`--override "${raw}": expected <type>.<field>=<integer>, e.g. demo.work.timeoutMs=900000`);
  }
  const text = raw.slice(eq + 1).trim();
  const type = key.slice(0, dot);
  const field = key.slice(dot + 1);
  if (!(type in policies)) {
    throw new UsageError(`--override "${raw}": unknown operation type "${type}" (registered: ${Object.keys(policies).join(", ")})`);
  }
  if (!isNumericField(field)) {
    throw new UsageError(`--override "${raw}": unknown policy field "${field}" (one of: ${NUMERIC_FIELDS.join(", ")})`);
  }
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UsageError(`--override "${raw}": value "${text}" is not a non-negative integer`);
  }
  return { raw, type, field, value: Number(text) };
}

function parseArgs(argv: string[]): Args {
  let configPath = WRANGLER_TOML;
  let registryPath = REGISTRY_MODULE;
  const overrides: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith("--") && arg.includes("=") ? [arg.slice(0, arg.indexOf("=")), arg.slice(arg.indexOf("=") + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined || v === "") throw new UsageError(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === "--config") configPath = resolve(process.cwd(), value());
    else if (flag === "--registry") registryPath = resolve(process.cwd(), value());
    else if (flag === "--override") overrides.push(value());
    else if (flag === "--help" || flag === "-h") {
      console.log(USAGE);
      process.exit(0);
    } else throw new UsageError(`unknown argument "${arg}"\n${USAGE}`);
  }
  return { configPath, registryPath, overrides };
}

function table(rows: string[][], rightAligned: ReadonlySet<number>): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  return rows
    .map((r) => r.map((cell, col) => (rightAligned.has(col) ? cell.padStart(widths[col]!) : cell.padEnd(widths[col]!))).join("  ").trimEnd())
    .join("\n");
}

function render(checks: ContractCheck[]): string {
  const header = ["rule", "type", "left", "value", "op", "right", "value", "result"];
  const rows = checks.map((c) => [
    c.rule,
    c.type,
    c.left.label,
    String(c.left.value),
    c.op,
    c.right.label,
    String(c.right.value),
    c.ok ? "OK" : "VIOLATED" + (c.note ? ` (${c.note})` : ""),
  ]);
  return table([header, ...rows], new Set([3, 6]));
}

async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const policies = await loadRegisteredPolicies(args.registryPath);
  const overrides = args.overrides.map((raw) => parseOverride(raw, policies));
  for (const o of overrides) {
    policies[o.type] = { ...policies[o.type]!, [o.field]: o.value };
  }
  const deployment = await readDeployment(args.configPath);
  const report = checkTimingContract(policies, deployment, DEFAULT_SETTINGS);

  console.log(`Timing contract (lifecycle.md section 5) against ${shown(args.configPath)}, settings DEFAULT_SETTINGS`);
  if (args.registryPath !== REGISTRY_MODULE) console.log(`Registry: ${shown(args.registryPath)}`);
  if (overrides.length > 0) console.log(`Overrides (this run only): ${overrides.map((o) => o.raw).join(", ")}`);
  console.log("");
  console.log(render(report.checks));
  console.log("");

  const missingRules = Object.keys(RULES).filter((rule) => !report.checks.some((c) => c.rule === rule));
  if (missingRules.length > 0 && Object.keys(policies).length > 0) {
    console.log(`Not checked: ${missingRules.join(", ")}`);
  }

  // The Worker checks itself against the generated copy, so a stale copy is a
  // contract failure even when wrangler.toml itself is fine.
  const generated = await generatedDeploymentStatus();
  let failed = false;
  if (generated.fresh) {
    console.log("Generated deployment: src/generated/deployment.ts matches wrangler.toml.");
  } else {
    console.error(`FAILED generated deployment: ${generated.problem}`);
    failed = true;
  }

  const types = Object.keys(policies).length;
  if (report.ok) {
    console.log(`All ${report.checks.length} checks hold (T1–T9) for ${types} operation type(s).`);
  } else {
    console.error(`${report.violations.length} of ${report.checks.length} checks VIOLATED:`);
    for (const v of report.violations) console.error(`  ${describeViolation(v)}`);
    failed = true;
  }
  return failed ? 1 : 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (!(e instanceof UsageError)) throw e;
  console.error(`check-lifecycle: ${e.message}`);
  process.exitCode = 2;
}
