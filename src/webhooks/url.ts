/**
 * Where a webhook may be sent. In production only public https targets: a
 * URL naming a loopback, private, link-local or otherwise non-public address
 * (IPv4, IPv6 and IPv4-mapped IPv6, classified by ipaddr.js) or a local-only
 * name (`localhost`, `*.localhost` RFC 6761, `*.local` RFC 6762,
 * `*.internal`) is refused, so an endpoint cannot be aimed at the network the
 * Worker runs beside. In local development (APP_ENV=local) http and loopback
 * targets are accepted, so a receiver on the developer's machine can be used.
 *
 * A public name that resolves to a private address is not caught here (the
 * Workers runtime offers no DNS lookup before fetch); deliveries also refuse
 * to follow redirects (./deliver.ts), so a public URL cannot bounce there.
 */
import ipaddr from "ipaddr.js";

export type UrlCheck = { ok: true; url: string } | { ok: false; message: string };

const MAX_URL_LENGTH = 2048;

/** Local-only names (RFC 6761 §6.3, RFC 6762, and the de-facto `.internal`). */
function isLocalName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost") || h.endsWith(".local") || h.endsWith(".internal") || !h.includes(".");
}

/** The ipaddr.js range of an IP literal host (brackets of IPv6 stripped), or null for a name. */
function ipRange(hostname: string): string | null {
  const bare = hostname.startsWith("[") && hostname.endsWith("]") ? hostname.slice(1, -1) : hostname;
  if (!ipaddr.isValid(bare)) return null;
  let addr = ipaddr.parse(bare);
  // ::ffff:127.0.0.1 is 127.0.0.1.
  if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) addr = (addr as ipaddr.IPv6).toIPv4Address();
  return addr.range();
}

/**
 * Check a webhook URL. `allowPrivate` (local development) accepts http and
 * non-public hosts. Returns the URL as the WHATWG parser normalised it (so
 * `http://0x7f000001/` is checked, and stored, as `http://127.0.0.1/`).
 */
export function checkWebhookUrl(raw: string, opts: { allowPrivate: boolean }): UrlCheck {
  if (raw.length > MAX_URL_LENGTH) return { ok: false, message: `The URL is longer than ${MAX_URL_LENGTH} characters.` };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, message: "This is not an absolute URL." };
  }
  const schemes = opts.allowPrivate ? ["https:", "http:"] : ["https:"];
  if (!schemes.includes(url.protocol)) {
    return { ok: false, message: opts.allowPrivate ? "The URL must use https or http." : "The URL must use https." };
  }
  if (url.username !== "" || url.password !== "") return { ok: false, message: "The URL must not carry a user name or password." };
  if (url.hash !== "") return { ok: false, message: "The URL must not have a #fragment (it is never sent)." };
  if (!opts.allowPrivate) {
    const range = ipRange(url.hostname);
    if (range !== null && range !== "unicast") {
      return { ok: false, message: `The URL names a ${range} address; webhooks go to public addresses only.` };
    }
    if (range === null && isLocalName(url.hostname)) {
      return { ok: false, message: `“${url.hostname}” is a local name; webhooks go to public hosts only.` };
    }
  }
  return { ok: true, url: url.toString() };
}
