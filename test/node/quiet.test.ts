// What npm start shows of wrangler (scripts/lib/quiet.ts): the migration
// table once, and the ready-to-paste block only after the server answers.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { lastTable, offlineWranglerEnv, whenAnswering } from "../../scripts/lib/quiet";

const table = (rows: string[]) =>
  ["┌──────┬────────┐", "│ name │ status │", ...rows.map((r) => `│ ${r} │`), "└──────┴────────┘"].join("\n");

describe("lastTable", () => {
  it("keeps only the final table of wrangler's reprinted ones", () => {
    const first = table(["0000 │ 🕒️", "0001 │ 🕒️"]);
    const middle = table(["0000 │ ✅", "0001 │ 🕒️"]);
    const last = table(["0000 │ ✅", "0001 │ ✅"]);
    const output = ["Migrations to be applied:", first, "🚣 2 commands executed successfully.", middle, "🚣 1 commands", last, ""].join("\n");
    expect(lastTable(output)).toBe(last);
  });

  it("is null when wrangler printed no table", () => {
    expect(lastTable("✅ No migrations to apply!\n")).toBeNull();
  });
});

describe("offlineWranglerEnv", () => {
  it("turns wrangler's calls home off, but a value the developer set wins", () => {
    const env = offlineWranglerEnv({ PATH: "/bin", WRANGLER_SEND_METRICS: "true" });
    expect(env).toMatchObject({ PATH: "/bin", WRANGLER_SEND_METRICS: "true", WRANGLER_SEND_ERROR_REPORTS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" });
  });
});

describe("whenAnswering", () => {
  let server: Server | undefined;
  afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

  /** A port nobody listens on yet (taken from the OS, then released). */
  async function freePort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    const { port } = s.address() as AddressInfo;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
  }

  it("resolves only after the server starts answering, whatever status it answers with", async () => {
    const port = await freePort();
    let attempts = 0;
    let thirdAttempt!: () => void;
    const threeAttempts = new Promise<void>((r) => (thirdAttempt = r));
    let settled = false;
    const ready = whenAnswering(`http://127.0.0.1:${port}/admin/sign-in`, () => {
      if (++attempts === 3) thirdAttempt();
      return true;
    }, { intervalMs: 10 }).then((v) => {
      settled = true;
      return v;
    });

    // Three refused connections in, nothing answers yet: not ready.
    await threeAttempts;
    expect(settled).toBe(false);

    const asked: string[] = [];
    server = createServer((req, res) => {
      asked.push(req.url ?? "");
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server!.listen(port, "127.0.0.1", r));
    expect(await ready).toBe(true);
    expect(asked).toContain("/admin/sign-in");
  });

  it("gives up with false once the server's process is gone", async () => {
    const port = await freePort();
    let attempts = 0;
    expect(await whenAnswering(`http://127.0.0.1:${port}/`, () => ++attempts < 3, { intervalMs: 10 })).toBe(false);
    expect(attempts).toBe(3);
  });
});
