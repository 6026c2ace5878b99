/**
 * Cloudflare Access: the `Cf-Access-Jwt-Assertion` header is a JWT signed by
 * the team's keys; verify signature, issuer (the team domain) and audience
 * (the application's AUD tag), then map its email to a user.
 * https://developers.cloudflare.com/cloudflare-one/identity/authorization-cookie/validating-json/
 */
import { createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { log } from "../../log";
import { AdminHttpError } from "./errors";

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

/**
 * jose's codes for a token that is not acceptable: malformed, forged, expired,
 * for another audience or issuer, signed with a disallowed algorithm or by a
 * key the team does not publish. Anything else (the key set could not be
 * fetched, timed out, or is not a key set) is our failure, not the client's.
 */
const TOKEN_REJECTIONS = new Set<string>([
  errors.JWTClaimValidationFailed.code,
  errors.JWTExpired.code,
  errors.JWTInvalid.code,
  errors.JWSInvalid.code,
  errors.JWSSignatureVerificationFailed.code,
  errors.JOSEAlgNotAllowed.code,
  errors.JWKSNoMatchingKey.code,
  errors.JWKSMultipleMatchingKeys.code,
]);

/**
 * The verified email, or null for a missing, forged, expired or wrong-audience
 * token. Throws AdminHttpError 503 (and logs it) when the token cannot be
 * checked at all, e.g. the team's key set is unreachable: every operator
 * would otherwise get a silent 401.
 */
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
  } catch (error) {
    // A rejected token is the same answer to every client: not signed in.
    if (error instanceof errors.JOSEError && TOKEN_REJECTIONS.has(error.code)) return null;
    log.error("admin.access_keys_unavailable", { teamDomain: opts.teamDomain, error });
    throw new AdminHttpError(503, "Sign-in is unavailable", "The admin could not check your Cloudflare Access sign-in just now. It has been logged; try again in a moment.");
  }
}
