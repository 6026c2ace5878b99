/**
 * What a workspace slug, a person's email, a display name, a role and an API
 * token name may be. The CLI and the admin check their input with these, so
 * both refuse the same things with the same words.
 */
import { z } from "zod";
import { MEMBERSHIP_ROLES } from "../db/schema";

// Control characters (C0, DEL, C1) would corrupt a terminal line or a log line.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

const label = (what: string, max: number) =>
  z
    .string()
    .trim()
    .min(1, `${what} must not be empty`)
    .max(max, `${what} must be at most ${max} characters`)
    .refine((s) => !CONTROL.test(s), `${what} must not contain control characters`);

/** Lowercase letters, digits and inner hyphens, 2–63 characters (a DNS label, so it fits URLs and hostnames). */
export const workspaceSlug = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])$/, "slug must be 2–63 lowercase letters, digits or hyphens, not starting or ending with a hyphen");

export const workspaceName = label("workspace name", 100);
export const personName = label("name", 100);
export const tokenName = label("token name", 100);

/** Stored lowercase: Cloudflare Access emails are compared lowercase (src/admin/auth/access.ts). */
export const email = z
  .string()
  .trim()
  .max(254, "email must be at most 254 characters")
  .pipe(z.email("email must be an email address"))
  .transform((e) => e.toLowerCase());

export const role = z.enum(MEMBERSHIP_ROLES, { error: `role must be one of: ${MEMBERSHIP_ROLES.join(", ")}` });

/** The first issue's message, for a one-line error. */
export function firstIssue(error: z.ZodError): string {
  return error.issues[0]?.message ?? "invalid value";
}
