/**
 * Redaction for anything that leaves an attempt and may reach an operator:
 * failure messages, diagnostics and audit metadata. Secrets are masked,
 * stack traces dropped, and text trimmed, so the admin and API can show what
 * is stored without a second filter.
 */
const SECRET_KEY = /(pass(word)?|secret|token|api[-_]?key|authorization|cookie|credential|private[-_]?key|signature)/i;
const SECRET_PATTERNS: RegExp[] = [
  /\bBearer\s+[A-Za-z0-9._~+/=-]+/gi,
  /\b(eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})\b/g, // JWTs
  // The key may be part of a longer identifier (access_token, DB_PASSWORD, clientSecret) or a
  // quoted JSON key ("password":"…"); the prefix is bounded so a long word cannot backtrack quadratically.
  /\b(\w{0,40}?(?:pass(?:word)?|secret|token|api[-_]?key|authorization|cookie|credential)["']?\s*[=:]\s*)(?:(?:Basic|Digest)\s+)?("[^"]*"|'[^']*'|\S+)/gi,
  /\b[A-Fa-f0-9]{32,}\b/g, // long hex (hashes, keys)
  /\b[A-Za-z0-9+/_-]{40,}={0,2}/g, // long base64-ish blobs
];

/** The most an operator-facing message may hold, in Unicode code points (characters, not UTF-16 units). */
export const MAX_MESSAGE_LENGTH = 500;

/** "    at fn (file.js:1:2)", "at file.js:1:2", "at async Promise.all (index 0)": not "at least 3 items". */
const STACK_FRAME = /^\s*at\s+.*(?::\d+:\d+\)?|\((?:native|index \d+|<anonymous>)\))\s*$/;

function maskSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (match, prefix: unknown) =>
      typeof prefix === "string" && /[=:]\s*$/.test(prefix) ? `${prefix}[redacted]` : "[redacted]",
    );
  }
  return out;
}

const ELLIPSIS = "…";

function codePointCount(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

// Grapheme clusters (an emoji with its modifiers and joiners, a letter with its
// accents) per Unicode UAX #29, so a cut never leaves half a character behind.
const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * `text` cut to at most `max` code points (`max` ≥ 1), the last of them "…"
 * when anything was cut. The cut falls on a grapheme-cluster boundary: a
 * slice by UTF-16 units could split a surrogate pair, which D1 stores as
 * invalid UTF-8 and the admin shows as U+FFFD. Apply it to the whole text as
 * shown, after any prefix is added, so the prefix cannot push it past `max`.
 */
export function truncateText(text: string, max = MAX_MESSAGE_LENGTH): string {
  // A UTF-16 length within the cap means a code-point count within it too.
  if (text.length <= max || codePointCount(text) <= max) return text;
  const budget = max - 1;
  let out = "";
  let used = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = codePointCount(segment);
    if (used + size > budget) {
      // A single cluster longer than the whole budget (pathological combining marks): cut it by code point.
      if (used === 0) out = Array.from(segment).slice(0, budget).join("");
      break;
    }
    out += segment;
    used += size;
  }
  return `${out}${ELLIPSIS}`;
}

/** An operator-safe one-paragraph message: no stack frames, no secrets, at most `max` code points. */
export function sanitizeMessage(text: string, max = MAX_MESSAGE_LENGTH): string {
  const withoutStack = text
    .split("\n")
    .filter((line) => !STACK_FRAME.test(line))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim();
  // Mask first: a cut through a secret could leave a part too short to match its pattern.
  return truncateText(maskSecrets(withoutStack), max);
}

/** The operator-safe message of anything thrown. Never `String(e)` of an object, never the stack. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const name = error.name && error.name !== "Error" ? `${error.name}: ` : "";
    return sanitizeMessage(`${name}${error.message}`);
  }
  if (typeof error === "string") return sanitizeMessage(error);
  return "A non-Error value was thrown.";
}

/** Identifier fields (runId, messageId, id, …) keep their value when it looks like an id: ids are not secrets. */
const ID_KEY = /(^id$|[a-z]Id$|_id$)/;
const ID_VALUE = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * A redacted deep copy of metadata: values under secret-looking keys are
 * masked, strings sanitized, depth and size bounded.
 */
export function redactMetadata(value: unknown, depth = 0): unknown {
  if (value === null || typeof value === "number" || typeof value === "boolean") return value;
  if (typeof value === "string") return sanitizeMessage(value);
  if (depth >= 5) return "[truncated]";
  if (Array.isArray(value)) return value.slice(0, 50).map((v) => redactMetadata(v, depth + 1));
  if (typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value).slice(0, 50)) out[k] = redactField(k, v, depth + 1);
    return out;
  }
  return undefined;
}

/**
 * The redacted value of one named field (an entry of metadata or of a log
 * line): masked under a secret-looking key, kept as is under an identifier
 * key when it looks like an id (a queue message id is 32 hex characters,
 * which the long-hex secret pattern would otherwise mask), else redacted as
 * `redactMetadata` does.
 */
export function redactField(key: string, value: unknown, depth = 0): unknown {
  if (ID_KEY.test(key) && typeof value === "string" && ID_VALUE.test(value) && !SECRET_KEY.test(key.replace(/Id$/, ""))) return value;
  return SECRET_KEY.test(key) ? "[redacted]" : redactMetadata(value, depth);
}
