// Which Chromium the browser tests pick (test/browser/support/chromium.ts):
// CHROMIUM_PATH, then a system browser, then the packaged one on Linux x64
// only. Pure choice over a made-up disk; the browser project itself proves
// that what it picks here launches.
import { describe, expect, it } from "vitest";
import { chooseChromium, PACKAGED, type Host } from "../browser/support/chromium";

function host(platform: NodeJS.Platform, arch: string, env: NodeJS.ProcessEnv, files: string[]): Host {
  const present = new Set(files);
  return { env, platform, arch, exists: (p) => present.has(p) };
}

describe("chooseChromium", () => {
  it("takes CHROMIUM_PATH first, over a system browser", () => {
    const h = host("linux", "x64", { CHROMIUM_PATH: "/opt/chrome/chrome", PATH: "/usr/bin" }, ["/opt/chrome/chrome", "/usr/bin/chromium"]);
    expect(chooseChromium(h)).toEqual({ path: "/opt/chrome/chrome", source: "CHROMIUM_PATH" });
  });

  it("refuses a CHROMIUM_PATH that does not exist instead of quietly using another browser", () => {
    const h = host("linux", "x64", { CHROMIUM_PATH: "/nowhere/chrome", PATH: "/usr/bin" }, ["/usr/bin/chromium"]);
    expect(() => chooseChromium(h)).toThrow(/CHROMIUM_PATH is \/nowhere\/chrome, which does not exist/);
  });

  it("takes a system Chromium on PATH over the packaged one, in PATH order", () => {
    const h = host("linux", "x64", { PATH: "/usr/local/bin:/usr/bin" }, ["/usr/bin/chromium", "/usr/local/bin/chromium"]);
    expect(chooseChromium(h)).toEqual({ path: "/usr/local/bin/chromium", source: "system" });
  });

  it("finds Google Chrome when there is no Chromium", () => {
    const h = host("linux", "x64", { PATH: "/usr/bin" }, ["/usr/bin/google-chrome"]);
    expect(chooseChromium(h)).toEqual({ path: "/usr/bin/google-chrome", source: "system" });
  });

  it("falls back to the packaged Chromium on Linux x64 with no browser installed", () => {
    expect(chooseChromium(host("linux", "x64", { PATH: "/usr/bin:/bin" }, []))).toEqual({ source: PACKAGED });
  });

  it("looks in /Applications on macOS", () => {
    const chrome = "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome";
    expect(chooseChromium(host("darwin", "arm64", { HOME: "/Users/a" }, [chrome]))).toEqual({ path: chrome, source: "system" });
  });

  it("looks under Program Files on Windows", () => {
    const chrome = "C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe";
    expect(chooseChromium(host("win32", "x64", { PROGRAMFILES: "C:\\Program Files" }, [chrome]))).toEqual({ path: chrome, source: "system" });
  });

  it.each([
    ["darwin", "arm64"],
    ["win32", "x64"],
    ["linux", "arm64"],
  ] as const)("on %s %s with no browser, fails saying how to provide one (the package has no build for it)", (platform, arch) => {
    expect(() => chooseChromium(host(platform, arch, { PATH: "/usr/bin" }, []))).toThrow(/Linux x64 build only.*set CHROMIUM_PATH/);
  });
});
