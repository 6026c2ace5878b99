/**
 * A SQL statement as data: its text with `?` placeholders and the values to
 * bind. The tenancy writes (workspaces, members, API tokens) are built once
 * as statements and run two ways: by the Worker through a D1 batch
 * (`prepared` in ./d1.ts), and by the node-side CLI, which inlines the values as SQL
 * literals for `wrangler d1 execute --file` (scripts/cli/d1.ts). So the rules
 * those writes enforce (the last owner stays, one live token per name) live in
 * one place.
 */
export type SqlValue = string | number | null;

export interface SqlStatement {
  /** SQL text; `?` appears only as a placeholder, never inside a literal. */
  sql: string;
  params: SqlValue[];
}

export const statement = (sql: string, ...params: SqlValue[]): SqlStatement => ({ sql, params });
