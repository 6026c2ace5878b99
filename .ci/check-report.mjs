// After `npm test` passed: read vitest's JSON report and fail CI if the
// browser project executed no test (green is not proof that Chromium and
// wrangler dev ran) or if any test anywhere was skipped or left as a todo
// (a skip is a test that cannot fail). Prints the closing summary last.
//
// Usage: node .ci/check-report.mjs <vitest JSON report>
// The report is vitest's `json` reporter (Jest-compatible shape): testResults[]
// per file with `name` (absolute path) and assertionResults[] with `status`.
import { readFileSync } from "node:fs";
import { relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(fileURLToPath(new URL("..", import.meta.url)));
const file = process.argv[2];
if (!file) {
  console.error("usage: node .ci/check-report.mjs <vitest JSON report>");
  process.exit(2);
}

let report;
try {
  report = JSON.parse(readFileSync(file, "utf8"));
} catch (e) {
  console.error(`CI: cannot read the vitest JSON report ${file}: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
}

const counts = { passed: 0, failed: 0, other: 0 };
let browserPassed = 0;
const notRun = [];
for (const suite of report.testResults ?? []) {
  const path = relative(root, suite.name).split(sep).join("/");
  const browser = path.startsWith("test/browser/");
  for (const t of suite.assertionResults ?? []) {
    if (t.status === "passed") {
      counts.passed++;
      if (browser) browserPassed++;
    } else if (t.status === "failed") {
      counts.failed++;
    } else {
      counts.other++;
      notRun.push(`${t.status}: ${path} > ${t.fullName}`);
    }
  }
}

const problems = [];
if (report.success !== true || counts.failed > 0) problems.push(`the report says the run failed (${counts.failed} failed tests)`);
if (browserPassed === 0) problems.push("the browser project executed no test (test/browser/): Chromium or wrangler dev never ran");
if (notRun.length > 0) problems.push(`${notRun.length} test(s) did not run:\n  ${notRun.join("\n  ")}`);

const ends = (report.testResults ?? []).map((s) => s.endTime).filter((t) => typeof t === "number");
const seconds = ends.length > 0 ? Math.round((Math.max(...ends) - report.startTime) / 1000) : 0;
const summary = `${counts.passed} tests passed (${browserPassed} in the browser project), ${counts.failed} failed, ${counts.other} skipped or todo; vitest took ${seconds} s`;
if (problems.length > 0) {
  for (const p of problems) console.error(`CI: ${p}`);
  console.error(`CI FAILED: ${summary}`);
  console.log(`Tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.other} skipped`);
  process.exit(1);
}
console.log(`CI passed: ${summary}`);
// The plain closing line a CI reader counts: "N passed, N failed, N skipped", alone.
console.log(`Tests: ${counts.passed} passed, ${counts.failed} failed, ${counts.other} skipped`);
