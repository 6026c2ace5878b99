/** What each membership role may do in the admin. Only owners manage the workspace (tokens, members); owners and operators act on runs (contract section 7). */
import type { MembershipRole } from "../../db/schema";

/** `runs:act`: operator actions on runs (contract section 7: retry as a new run, cancel). */
export const CAPABILITIES = ["runs:read", "runs:diagnostics", "runs:act", "audit:read", "lifecycle:read", "settings:manage"] as const;
export type Capability = (typeof CAPABILITIES)[number];

const BY_ROLE: Record<MembershipRole, ReadonlySet<Capability>> = {
  owner: new Set(CAPABILITIES),
  operator: new Set(["runs:read", "runs:diagnostics", "runs:act", "audit:read", "lifecycle:read"]),
  viewer: new Set(["runs:read", "lifecycle:read"]),
};

export function can(role: MembershipRole, capability: Capability): boolean {
  return BY_ROLE[role].has(capability);
}
