/**
 * Where a webhook may point (src/webhooks/url.ts): public https only in
 * production; loopback, private, link-local and local names refused, however
 * the address is spelt; http and loopback accepted in local development.
 */
import { describe, expect, it } from "vitest";
import { webhookConfig } from "../../src/webhooks/config";
import { checkWebhookUrl } from "../../src/webhooks/url";

const prod = (url: string) => checkWebhookUrl(url, { allowPrivate: false });
const local = (url: string) => checkWebhookUrl(url, { allowPrivate: true });

describe("in production", () => {
  it("accepts a public https URL, normalised", () => {
    expect(prod("https://Hooks.Example.com/oplife?x=1")).toEqual({ ok: true, url: "https://hooks.example.com/oplife?x=1" });
    expect(prod("https://93.184.215.14/hook")).toMatchObject({ ok: true });
    expect(prod("https://[2606:4700:4700::1111]/hook")).toMatchObject({ ok: true });
  });

  it.each([
    "http://hooks.example.com/",
    "ftp://hooks.example.com/",
    "https://127.0.0.1/",
    "https://127.1/",
    "https://0x7f000001/",
    "https://2130706433/",
    "https://10.0.0.8/",
    "https://172.16.3.4/",
    "https://192.168.1.1/",
    "https://169.254.169.254/latest/meta-data",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://[::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:10.0.0.1]/",
    "https://[fe80::1]/",
    "https://[fd00::1]/",
    "https://localhost/",
    "https://api.localhost/",
    "https://printer.local/",
    "https://metadata.google.internal/",
    "https://intranet/",
    "https://user:pass@hooks.example.com/",
    "https://hooks.example.com/#frag",
    "not a url",
  ])("refuses %s", (url) => {
    const r = prod(url);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message.length).toBeGreaterThan(10);
  });
});

describe("in local development", () => {
  it("accepts http and loopback receivers", () => {
    expect(local("http://127.0.0.1:8787/hook")).toEqual({ ok: true, url: "http://127.0.0.1:8787/hook" });
    expect(local("http://localhost:3000/")).toMatchObject({ ok: true });
  });

  it("still refuses other schemes", () => {
    expect(local("file:///etc/passwd")).toMatchObject({ ok: false });
  });
});

describe("APP_ENV decides", () => {
  it("only local, development and test allow private targets; anything else, unset included, is production", () => {
    expect(webhookConfig({ APP_ENV: "local" }).allowPrivateTargets).toBe(true);
    expect(webhookConfig({ APP_ENV: "test" }).allowPrivateTargets).toBe(true);
    expect(webhookConfig({ APP_ENV: "production" }).allowPrivateTargets).toBe(false);
    expect(webhookConfig({ APP_ENV: "Local " }).allowPrivateTargets).toBe(false);
    expect(webhookConfig({}).allowPrivateTargets).toBe(false);
  });

  it("a bad number names its variable", () => {
    expect(() => webhookConfig({ WEBHOOK_MAX_ATTEMPTS: "0" })).toThrow(/WEBHOOK_MAX_ATTEMPTS/);
  });
});
