/**
 * Cloudflare Access: the `Cf-Access-Jwt-Assertion` header is a JWT signed by
 * the team's keys; verify signature, issuer (the team domain) and audience
 * (the application's AUD tag), then map its email to a user.
 * https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/
 */
import { createRemoteJWKSet, jwtVerify, type JWTVerifyGetKey } from "jose";

const keySets = new Map<string, JWTVerifyGetKey>();

/** The team's signing keys, cached per isolate (jose refreshes them on rotation). */
export function teamKeys(teamDomain: string): JWTVerifyGetKey {
  let keys = keySets.get(teamDomain);
  if (!keys) {
    keys = createRemoteJWKSet(new URL(`${teamDomain}/cdn-cgi/access/certs`));
    keySets.set(teamDomain, keys);
  }
  return keys;
}

/** The verified email, or null for a missing, forged, expired or wrong-audience token. */
export async function verifyAccessJwt(
  token: string | undefined,
  opts: { teamDomain: string; audience: string; keys: JWTVerifyGetKey },
): Promise<string | null> {
  if (!token) return null;
  try {
    const { payload } = await jwtVerify(token, opts.keys, {
      issuer: opts.teamDomain,
      audience: opts.audience,
      algorithms: ["RS256", "ES256"],
      clockTolerance: 5,
    });
    return typeof payload.email === "string" && payload.email.includes("@") ? payload.email.toLowerCase() : null;
  } catch {
    // Any verification failure is the same answer to the client: not signed in.
    return null;
  }
}
