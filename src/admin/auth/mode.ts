/**
 * How the admin knows who is looking. Production: Cloudflare Access (a JWT
 * verified against the team's keys). Local: a dev sign-in page, which exists
 * only when DEV_SIGN_IN is set and refuses to run alongside Access settings,
 * so a deploy can never end up with both.
 */
export type AuthMode =
  | { kind: "access"; teamDomain: string; audience: string }
  | { kind: "dev"; sessionSecret: string }
  | { kind: "misconfigured"; problem: string };

export interface AuthVars {
  DEV_SIGN_IN?: string;
  SESSION_SECRET?: string;
  ACCESS_TEAM_DOMAIN?: string;
  ACCESS_AUD?: string;
}

export function authMode(env: AuthVars): AuthMode {
  const team = env.ACCESS_TEAM_DOMAIN?.trim();
  const aud = env.ACCESS_AUD?.trim();
  if (env.DEV_SIGN_IN === "1") {
    if (team || aud) {
      return {
        kind: "misconfigured",
        problem: "DEV_SIGN_IN is set together with Cloudflare Access settings (ACCESS_TEAM_DOMAIN / ACCESS_AUD). Remove DEV_SIGN_IN outside local development.",
      };
    }
    if (!env.SESSION_SECRET || env.SESSION_SECRET.length < 32) {
      return { kind: "misconfigured", problem: "DEV_SIGN_IN needs SESSION_SECRET of at least 32 characters (npm start keeps one in .wrangler/state/dev.env)." };
    }
    return { kind: "dev", sessionSecret: env.SESSION_SECRET };
  }
  if (team && aud) {
    if (!/^https:\/\/[a-z0-9-]+\.cloudflareaccess\.com$/i.test(team)) {
      return { kind: "misconfigured", problem: "ACCESS_TEAM_DOMAIN must look like https://<team>.cloudflareaccess.com." };
    }
    return { kind: "access", teamDomain: team, audience: aud };
  }
  return {
    kind: "misconfigured",
    problem: "The admin has no sign-in configured: set ACCESS_TEAM_DOMAIN and ACCESS_AUD (Cloudflare Access), or DEV_SIGN_IN=1 locally.",
  };
}
