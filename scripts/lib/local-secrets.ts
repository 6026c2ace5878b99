/**
 * Secrets for `npm start`'s local Worker: the admin's dev sign-in
 * (DEV_SIGN_IN=1 and a SESSION_SECRET that signs the session cookie).
 *
 * They go to `.wrangler/state/dev.env`, handed to `wrangler dev --env-file`,
 * not to `.dev.vars`: wrangler also reads `.dev.vars` for `wrangler types`
 * (its keys would enter the committed Env) and the vitest workers pool reads
 * it too (tests would suddenly run with dev sign-in on). A `.dev.vars` the
 * developer wrote is respected: then `npm start` passes no --env-file at all.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { ROOT, shown } from "./project";

export const DEV_VARS = resolve(ROOT, ".dev.vars");
export const LOCAL_ENV_FILE = resolve(ROOT, ".wrangler/state/dev.env");

export interface LocalSecrets {
  /** Extra `wrangler dev` arguments. */
  args: string[];
  /** One line for the person starting it. */
  note: string;
}

/** Create (once) and return the local secrets file, unless the developer keeps a .dev.vars. */
export function localSecrets(): LocalSecrets {
  if (existsSync(DEV_VARS)) {
    const text = readFileSync(DEV_VARS, "utf8");
    const note = /^\s*DEV_SIGN_IN\s*=/m.test(text)
      ? `Using your ${shown(DEV_VARS)} (admin dev sign-in as configured there).`
      : `Using your ${shown(DEV_VARS)}; it has no DEV_SIGN_IN=1, so the admin's dev sign-in is off.`;
    return { args: [], note };
  }
  if (!existsSync(LOCAL_ENV_FILE) || !/^SESSION_SECRET=\S{32,}$/m.test(readFileSync(LOCAL_ENV_FILE, "utf8"))) {
    mkdirSync(dirname(LOCAL_ENV_FILE), { recursive: true });
    const secret = randomBytes(32).toString("base64url");
    writeFileSync(
      LOCAL_ENV_FILE,
      `# Written by npm start (scripts/lib/local-secrets.ts) for wrangler dev --env-file. Local only.\nDEV_SIGN_IN=1\nSESSION_SECRET=${secret}\n`,
      { mode: 0o600 },
    );
  }
  return {
    args: ["--env-file", LOCAL_ENV_FILE],
    note: `Admin dev sign-in on (DEV_SIGN_IN=1, SESSION_SECRET from ${shown(LOCAL_ENV_FILE)}).`,
  };
}
