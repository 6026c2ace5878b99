// Redaction: what reaches an operator has no stack frames, no secrets, and a bounded size.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { errorMessage, MAX_MESSAGE_LENGTH, redactField, redactMetadata, sanitizeMessage, truncateText } from "../../src/lifecycle";

const JWT =
  "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const HEX = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

describe("sanitizeMessage", () => {
  it("drops stack frames and joins the rest into one line", () => {
    const text = "TypeError: boom\n    at foo (file.js:1:2)\n    at async bar (worker.js:10:5)\n  at file.js:3:4\nafter the stack";
    expect(sanitizeMessage(text)).toBe("TypeError: boom after the stack");
  });

  it("keeps ordinary lines that merely start with 'at'", () => {
    expect(sanitizeMessage("Expected\nat least 3 items\nat 10:30 the import stopped")).toBe(
      "Expected at least 3 items at 10:30 the import stopped",
    );
    expect(sanitizeMessage("boom\n    at async Promise.all (index 0)\n    at native (native)")).toBe("boom");
  });

  it("collapses whitespace and trims", () => {
    expect(sanitizeMessage("  a \t b\n\n c  ")).toBe("a b c");
  });

  it.each([
    { name: "Bearer token", text: "request failed: Authorization: Bearer abc.DEF-123_x~y", secret: "abc.DEF-123_x~y" },
    { name: "lowercase bearer", text: "sent bearer s3cr3tvalue", secret: "s3cr3tvalue" },
    { name: "JWT", text: `bad token ${JWT} rejected`, secret: JWT.slice(0, 20) },
    { name: "password=", text: "login password=hunter2 failed", secret: "hunter2" },
    { name: "password: quoted", text: `password: "correct horse" wrong`, secret: "correct horse" },
    { name: "secret=", text: "secret=shh123", secret: "shh123" },
    { name: "api_key=", text: "GET /v1?api_key=k_live_123", secret: "k_live_123" },
    { name: "long hex", text: `hash ${HEX} mismatch`, secret: HEX },
    { name: "long base64 blob", text: `key ${"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw"}==`, secret: "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3ODkw" },
    // A secret word inside a longer key, or a JSON key, must not escape the mask.
    { name: "access_token in a URL", text: "GET https://api.example.com/x?access_token=abc123def&x=1", secret: "abc123def" },
    { name: "ENV-style key", text: "DB_PASSWORD=hunter2 rejected", secret: "hunter2" },
    { name: "camelCase key", text: "clientSecret: s3cr3t", secret: "s3cr3t" },
    { name: "JSON body", text: `body {"user":"bob","password":"hunter2"}`, secret: "hunter2" },
    { name: "Basic auth header", text: "Authorization: Basic dXNlcjpwYXNz", secret: "dXNlcjpwYXNz" },
    { name: "cookie header", text: "Cookie: session=abcd1234", secret: "abcd1234" },
  ])("masks a $name", ({ text, secret }) => {
    const out = sanitizeMessage(text);
    expect(out).not.toContain(secret);
    expect(out).toContain("[redacted]");
  });

  it("keeps the key and the surrounding words, masking only the value", () => {
    expect(sanitizeMessage("login password=hunter2 failed")).toBe("login password=[redacted] failed");
    expect(sanitizeMessage("DB_PASSWORD=hunter2")).toBe("DB_PASSWORD=[redacted]");
    expect(sanitizeMessage(`hash ${HEX} mismatch`)).toBe("hash [redacted] mismatch");
  });

  it("leaves ordinary words alone", () => {
    const text = "Step 3 of 10 failed: 2 tokens left, passes: 4, max_tokens 100";
    expect(sanitizeMessage(text)).toBe(text);
  });

  it("trims to the maximum with an ellipsis", () => {
    const out = sanitizeMessage("word ".repeat(400));
    expect(out).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(out.endsWith("…")).toBe(true);
    expect(sanitizeMessage("abcdefghij", 5)).toBe("abcd…");
    expect(sanitizeMessage("abcde", 5)).toBe("abcde");
  });

  it("counts the cap in code points and cuts at a character boundary, never inside a surrogate pair", () => {
    // 😀 is one code point, two UTF-16 units: a cut by units at 499 would keep only its high surrogate.
    const words = "ab ".repeat(166); // 498 characters (words, so no secret pattern matches)
    const text = `${words}😀${"b".repeat(10)}`;
    const out = sanitizeMessage(text);
    expect(out.isWellFormed()).toBe(true);
    expect(out).toBe(`${words}😀…`);
    expect([...out]).toHaveLength(MAX_MESSAGE_LENGTH);

    const emoji = sanitizeMessage("😀".repeat(600));
    expect(emoji).toBe(`${"😀".repeat(499)}…`);
    expect(emoji.isWellFormed()).toBe(true);
  });

  it("an error's name prefix is inside the cap", () => {
    const out = errorMessage(new TypeError("x ".repeat(300)));
    expect(out.startsWith("TypeError: x x")).toBe(true);
    expect([...out]).toHaveLength(MAX_MESSAGE_LENGTH);
  });

  it("masks before trimming, so a cut cannot expose half a secret", () => {
    const out = sanitizeMessage(`${"x".repeat(20)} password=${"s".repeat(30)}`, 30);
    expect(out).not.toContain("sss");
  });

  // Long inputs shaped to make a backtracking pattern blow up. No clock here:
  // the patterns are linear by construction (bounded prefixes, no nested
  // quantifiers; see redact.ts), and one that is not would hang this file
  // rather than pass it. How fast they run is a benchmark's business.
  it("masks and trims long adversarial input", () => {
    expect(sanitizeMessage("a-".repeat(200_000))).toBe("[redacted]");
    const words = sanitizeMessage("password ".repeat(50_000));
    expect(words).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(words).toMatch(/^password password .*…$/);
    expect(sanitizeMessage(`token=${"x ".repeat(100_000)}`)).toMatch(/^token=\[redacted\] x x /);
  });
});

describe("truncateText", () => {
  it("leaves text within the cap alone, counting code points, not UTF-16 units", () => {
    expect(truncateText("abcde", 5)).toBe("abcde");
    // 5 code points, 10 UTF-16 units.
    expect(truncateText("😀😀😀😀😀", 5)).toBe("😀😀😀😀😀");
    expect(truncateText("😀😀😀😀😀😀", 5)).toBe("😀😀😀😀…");
  });

  it("keeps a grapheme cluster whole: an emoji sequence or a letter with its accent is cut before, not through", () => {
    const family = "👨‍👩‍👧"; // 5 code points joined by ZWJ
    expect(truncateText(`${"a".repeat(6)}${family}z`, 10)).toBe(`${"a".repeat(6)}…`);
    expect(truncateText(`${"a".repeat(3)}${family}zzz`, 10)).toBe(`${"a".repeat(3)}${family}z…`);
    expect(truncateText("abcde\u0301fgh", 6)).toBe("abcd…");
    expect(truncateText("abcde\u0301fgh", 7)).toBe("abcde\u0301…");
  });

  it("a single cluster longer than the whole cap is cut by code point", () => {
    const zalgo = `e${"\u0301".repeat(20)}`;
    expect(truncateText(zalgo, 5)).toBe(`e${"\u0301".repeat(3)}…`);
  });

  it("the cap holds after a prefix is added to an already capped message", () => {
    // e.g. "Attempt 3 of 3 failed: " + the attempt's (capped) error: capping the parts is not enough.
    const composed = `Attempt 3 of 3 failed: ${sanitizeMessage("y ".repeat(450))}`;
    expect([...composed].length).toBeGreaterThan(MAX_MESSAGE_LENGTH);
    const out = truncateText(composed);
    expect([...out]).toHaveLength(MAX_MESSAGE_LENGTH);
    expect(out.startsWith("Attempt 3 of 3 failed: y y")).toBe(true);
  });

  it("for any text and cap: well-formed, at most `max` code points, a prefix of the input (plus …) or the input itself", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), fc.integer({ min: 1, max: 40 }), (raw, max) => {
        const text = raw.toWellFormed();
        const out = truncateText(text, max);
        expect(out.isWellFormed()).toBe(true);
        expect([...out].length).toBeLessThanOrEqual(max);
        if ([...text].length <= max) expect(out).toBe(text);
        else {
          expect(out.endsWith("…")).toBe(true);
          expect(text.startsWith(out.slice(0, -1))).toBe(true);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe("errorMessage", () => {
  it("an Error gives its message, without the stack", () => {
    const e = new Error("disk full");
    expect(errorMessage(e)).toBe("disk full");
    expect(errorMessage(e)).not.toContain(" at ");
  });

  it("a subclass is prefixed with its name", () => {
    expect(errorMessage(new TypeError("x is not a function"))).toBe("TypeError: x is not a function");
  });

  it("a message with a stack pasted in and a secret is sanitised", () => {
    const e = new Error("upstream said: token=abc123\n    at fetch (net.js:1:1)");
    expect(errorMessage(e)).toBe("upstream said: token=[redacted]");
  });

  it("a string is sanitised", () => {
    expect(errorMessage("  Bearer abcdef  ")).toBe("[redacted]");
  });

  it.each([{ message: "obj" }, { a: 1 }, null, undefined, 42, Symbol("s")])("a non-Error value (%s) never prints [object Object]", (value) => {
    const out = errorMessage(value);
    expect(out).not.toContain("[object");
    expect(out).toBe("A non-Error value was thrown.");
  });
});

describe("redactMetadata", () => {
  it.each(["token", "password", "authorization", "apiKey", "api_key", "X-Api-Key", "clientSecret", "cookie", "privateKey", "signature"])(
    "masks the value under %s",
    (key) => {
      expect(redactMetadata({ [key]: "v4lu3", keep: "ok" })).toEqual({ [key]: "[redacted]", keep: "ok" });
    },
  );

  it("masks a whole object under a secret key", () => {
    expect(redactMetadata({ credentials: { user: "u", pass: "p" } })).toEqual({ credentials: "[redacted]" });
  });

  it("recurses into objects and arrays, sanitising strings", () => {
    const out = redactMetadata({
      request: { headers: { Authorization: "Bearer x", accept: "json" }, items: [{ password: "p", n: 1 }, "password=p"] },
      count: 3,
      ok: true,
      none: null,
    });
    expect(out).toEqual({
      request: { headers: { Authorization: "[redacted]", accept: "json" }, items: [{ password: "[redacted]", n: 1 }, "password=[redacted]"] },
      count: 3,
      ok: true,
      none: null,
    });
  });

  it("keeps identifier fields (runId, messageId, id) intact: ids are not secrets", () => {
    const hexId = "0123456789abcdef0123456789abcdef";
    expect(redactMetadata({ messageId: hexId, runId: "run_01HZZZZZZZZZZZZZZZZZZZZZZZ", id: hexId })).toEqual({
      messageId: hexId,
      runId: "run_01HZZZZZZZZZZZZZZZZZZZZZZZ",
      id: hexId,
    });
    // …but not a secret-named one, nor a non-id value under an id key.
    expect(redactMetadata({ tokenId: hexId, runId: "Bearer abc.def.ghi" })).toEqual({ tokenId: "[redacted]", runId: "[redacted]" });
  });

  it("a 32-hex queue message id under an id key is kept; the same hex in free text or under a secret key is not", () => {
    const messageId = "6a1f0c9e2b7d4e8fa3c5b1d0e9f87a64"; // the shape of a Cloudflare Queues message id
    expect(redactMetadata({ messageId, note: `retrying ${messageId}`, apiKey: messageId })).toEqual({
      messageId,
      note: "retrying [redacted]",
      apiKey: "[redacted]",
    });
  });

  it("bounds depth", () => {
    const deep = { a: { b: { c: { d: { e: { f: 1 } } } } } };
    expect(redactMetadata(deep)).toEqual({ a: { b: { c: { d: { e: "[truncated]" } } } } });
  });

  it("bounds size: at most 50 keys and 50 items", () => {
    const many = Object.fromEntries(Array.from({ length: 80 }, (_, i) => [`k${i}`, i]));
    expect(Object.keys(redactMetadata(many) as object)).toHaveLength(50);
    expect(redactMetadata(Array.from({ length: 80 }, (_, i) => i))).toHaveLength(50);
  });

  it("drops values JSON cannot carry and does not touch the input", () => {
    const input = { f: () => 1, u: undefined, big: 10n, token: "t" };
    expect(redactMetadata(input)).toEqual({ f: undefined, u: undefined, big: undefined, token: "[redacted]" });
    expect(input.token).toBe("t");
  });
});

describe("redactField", () => {
  const hexId = "0123456789abcdef0123456789abcdef";

  it("keeps an id under an identifier key, at the top level as in a log line", () => {
    expect(redactField("messageId", hexId)).toBe(hexId);
    expect(redactField("id", hexId)).toBe(hexId);
    expect(redactField("run_id", "run_01HZZZZZZZZZZZZZZZZZZZZZZZ")).toBe("run_01HZZZZZZZZZZZZZZZZZZZZZZZ");
  });

  it("keeps real secrets redacted", () => {
    expect(redactField("token", "v4lu3")).toBe("[redacted]");
    expect(redactField("tokenId", hexId)).toBe("[redacted]");
    expect(redactField("messageId", "Bearer abc.def.ghi")).toBe("[redacted]");
    expect(redactField("hash", hexId)).toBe("[redacted]");
    expect(redactField("detail", `upstream said password=hunter2 for ${hexId}`)).toBe("upstream said password=[redacted] for [redacted]");
  });

  it("redacts a nested value as redactMetadata does", () => {
    expect(redactField("request", { headers: { Authorization: "Bearer x" }, messageId: hexId })).toEqual({
      headers: { Authorization: "[redacted]" },
      messageId: hexId,
    });
  });
});
