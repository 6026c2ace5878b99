/**
 * `npm run oplife -- <noun> <verb> [flags]`: workspaces, members and API
 * tokens without hand-written SQL, against the local D1 (default) or the
 * deployed one (`--remote`), through wrangler (see d1.ts).
 *
 * Exit codes: 0 done · 1 the database could not be reached or changed
 * meanwhile (nothing written) · 2 bad input (unknown command or flag, invalid
 * value, no such workspace/member/token, a rule such as "the last owner
 * stays"). With --json, results go to stdout as JSON and errors to stderr as
 * `{"error": {"message", "exitCode"}}`.
 */
import { Command, CommanderError, Option } from "commander";
import { MEMBERSHIP_ROLES } from "../../src/db/schema";
import { UsageError } from "../lib/project";
import * as commands from "./commands";
import { DatabaseError, type Target } from "./d1";

interface GlobalOptions {
  remote?: boolean;
  persistTo?: string;
  json?: boolean;
}

const program = new Command("oplife")
  .description("Manage oplife workspaces, members and API tokens in the local D1 (or the deployed one with --remote).")
  .option("--remote", "act on the deployed D1 (wrangler must be logged in), not the local one")
  .option("--persist-to <dir>", "local D1 state directory, as wrangler's --persist-to (default .wrangler/state)")
  .option("--json", "print the result as JSON (errors as JSON on stderr)")
  .showHelpAfterError()
  .configureHelp({ showGlobalOptions: true })
  .exitOverride()
  .configureOutput({ outputError: (text, write) => (wantsJson() ? undefined : write(text)) });

function wantsJson(): boolean {
  return process.argv.includes("--json");
}

type Action = (target: Target, opts: Record<string, string>) => Promise<commands.Output>;

/** Wire a command: global options give the target, the action's result is printed as text or JSON. */
function action(fn: Action) {
  return async (opts: Record<string, string>, cmd: Command) => {
    const g = cmd.optsWithGlobals<GlobalOptions>();
    if (g.remote && g.persistTo) throw new UsageError("--persist-to is for the local D1; it cannot be used with --remote");
    const out = await fn({ remote: Boolean(g.remote), persistTo: g.persistTo }, opts);
    console.log(g.json ? JSON.stringify(out.json, null, 2) : out.text);
  };
}

const roleOption = () => new Option("--role <role>", "the member's role").choices(MEMBERSHIP_ROLES).makeOptionMandatory();

const workspace = program.command("workspace").description("create and list workspaces");
workspace
  .command("create")
  .description("create a workspace")
  .requiredOption("--slug <slug>", "short name: lowercase letters, digits, hyphens")
  .requiredOption("--name <name>", "display name")
  .action(action((t, o) => commands.workspaceCreate(t, { slug: o.slug!, name: o.name! })));
workspace
  .command("list")
  .description("list workspaces with their member and owner counts")
  .action(action((t) => commands.workspaceList(t)));

const member = program.command("member").description("add, change and remove workspace members");
member
  .command("add")
  .description("add a person (by email) to a workspace; creates the user if new")
  .requiredOption("--workspace <slug>", "the workspace")
  .requiredOption("--email <email>", "the person's email (as Cloudflare Access will present it)")
  .addOption(roleOption())
  .option("--name <name>", "display name for a new user (default: the email's local part)")
  .action(action((t, o) => commands.memberAdd(t, { workspace: o.workspace!, email: o.email!, role: o.role!, ...(o.name !== undefined ? { name: o.name } : {}) })));
member
  .command("set-role")
  .description("change a member's role (the last owner stays owner)")
  .requiredOption("--workspace <slug>", "the workspace")
  .requiredOption("--email <email>", "the member's email")
  .addOption(roleOption())
  .action(action((t, o) => commands.memberSetRole(t, { workspace: o.workspace!, email: o.email!, role: o.role! })));
member
  .command("remove")
  .description("remove a member (not the last owner)")
  .requiredOption("--workspace <slug>", "the workspace")
  .requiredOption("--email <email>", "the member's email")
  .action(action((t, o) => commands.memberRemove(t, { workspace: o.workspace!, email: o.email! })));
member
  .command("list")
  .description("list a workspace's members")
  .requiredOption("--workspace <slug>", "the workspace")
  .action(action((t, o) => commands.memberList(t, { workspace: o.workspace! })));

const token = program.command("token").description("create, list and revoke API tokens");
token
  .command("create")
  .description("create an API token; it is printed once, only its SHA-256 is stored")
  .requiredOption("--workspace <slug>", "the workspace")
  .requiredOption("--name <name>", "a name unique among the workspace's live tokens")
  .action(action((t, o) => commands.tokenCreate(t, { workspace: o.workspace!, name: o.name! })));
token
  .command("list")
  .description("list a workspace's tokens: name, created, last used, revoked")
  .requiredOption("--workspace <slug>", "the workspace")
  .action(action((t, o) => commands.tokenList(t, { workspace: o.workspace! })));
token
  .command("revoke")
  .description("revoke a live token by name; it answers 401 from then on")
  .requiredOption("--workspace <slug>", "the workspace")
  .requiredOption("--name <name>", "the token's name")
  .action(action((t, o) => commands.tokenRevoke(t, { workspace: o.workspace!, name: o.name! })));

function fail(message: string, exitCode: number): number {
  if (wantsJson()) console.error(JSON.stringify({ error: { message, exitCode } }));
  else console.error(`oplife: ${message}`);
  return exitCode;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version are not errors (commander's own exit code 0).
      if (e.exitCode === 0) return 0;
      // Anything else commander refused (unknown command or option, missing or bad value, a bare
      // noun such as `oplife token`) is a usage error; commander has already printed why.
      return wantsJson() ? fail(e.message.replace(/^error: /, ""), 2) : 2;
    }
    if (e instanceof UsageError) return fail(e.message, 2);
    if (e instanceof DatabaseError) return fail(e.message, 1);
    throw e;
  }
}

process.exitCode = await main(process.argv);
