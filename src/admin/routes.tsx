/**
 * The operators' admin under /admin (Hono + hono/jsx + htmx). Runs are
 * read-only here; owners manage tokens and members under /settings
 * (./settings). Every read is scoped by the viewer's current workspace;
 * another workspace's run or event is a 404.
 */
import { Hono, type Context } from "hono";
import { csrf } from "hono/csrf";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import { DEFAULT_SETTINGS } from "../lifecycle";
import { getOperation, operationTypes } from "../operations";
import { ACTOR_KINDS, getAuditEvent, listAuditEvents, retriesOf, runInWorkspace, runTimeline } from "../runs";
import { runtimeContract } from "../contract-runtime";
import { log } from "../log";
import { can } from "./auth/capabilities";
import { authMode } from "./auth/mode";
import { devSignInOnlyLocally } from "./auth/local-only";
import { endSession, startSession } from "./auth/session";
import { AdminHttpError, requireCapability, requireViewer, selectWorkspace, type AdminDeps, type AdminEnv } from "./auth/viewer";
import { parsePollState, pollOperations, pollStateQuery, stateAfterPage } from "./live";
import { DISPLAY_FILTERS, operationsPage, type OperationsFilter } from "./queries";
import { readSession } from "../db/read-session";
import { createSettings } from "./settings/routes";
import { canActOnRuns, createRunActions } from "./run-actions";
import { adminSecureHeaders } from "./security";
import { AuditView, EventDetail, type AuditQuery } from "./views/audit";
import { Layout } from "./views/layout";
import { LifecycleView } from "./views/lifecycle";
import { LiveRegion, LiveRows, MoreRows, OperationsView, RANGES, rangeSince, type OperationsQuery } from "./views/operations";
import { ErrorView, SignInView } from "./views/pages";
import { RunPoller, RunSummary, RunView, Timeline } from "./views/run";
import { cancellable, RunActions } from "./views/run-actions";

const PAGE_SIZE = 25;
const RUN_ID = /^run_[0-9A-HJKMNP-TV-Z]{26}$/;
const EVENT_ID = /^evt_[0-9A-HJKMNP-TV-Z]{26}$/;

const operationsQuery = z.object({
  display: z.enum(DISPLAY_FILTERS).optional().catch(undefined),
  run: z.string().max(200).optional().catch(undefined),
  type: z.string().max(200).optional().catch(undefined),
  range: z.enum(Object.keys(RANGES) as [keyof typeof RANGES, ...Array<keyof typeof RANGES>]).optional().catch(undefined),
  cursor: z.string().regex(RUN_ID).optional().catch(undefined),
});

const auditQuery = z.object({
  action: z.string().max(100).optional().catch(undefined),
  actor: z.enum(ACTOR_KINDS).optional().catch(undefined),
  run: z.string().regex(RUN_ID).optional().catch(undefined),
  cursor: z.string().regex(EVENT_ID).optional().catch(undefined),
  event: z.string().regex(EVENT_ID).optional().catch(undefined),
});

function emptyToUndefined(q: Record<string, string>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(q).map(([k, v]) => [k, v === "" ? undefined : v]));
}

const isHtmx = (c: Context) => c.req.header("hx-request") === "true";

/**
 * A run id as an operator pastes it: surrounding space and letter case do not
 * matter (Crockford base32 is case-insensitive), the `run_` prefix may be left
 * out. Anything else is refused with a sentence, never looked up.
 */
export function normalizeRunId(raw: string): { ok: true; id: string } | { ok: false; error: string } {
  const body = raw.trim().replace(/^run_/i, "").toUpperCase();
  const id = `run_${body}`;
  return RUN_ID.test(id)
    ? { ok: true, id }
    : { ok: false, error: "A run id is run_ followed by 26 letters and digits. Paste the whole id, as shown on the run's page." };
}

export function createAdmin(deps: AdminDeps = {}) {
  const admin = new Hono<AdminEnv>();

  admin.use("*", adminSecureHeaders);
  admin.use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
  });
  // Unsafe methods must come from our own origin (Origin header check), on top of SameSite cookies.
  admin.use("*", csrf());
  admin.use("*", devSignInOnlyLocally());

  admin.onError((error, c) => {
    if (error instanceof AdminHttpError) {
      if (error.status === 401 && authMode(c.env).kind === "dev") {
        if (isHtmx(c)) {
          c.header("HX-Redirect", "/admin/sign-in");
          return c.body(null, 401);
        }
        if (c.req.method === "GET") return c.redirect("/admin/sign-in", 302);
      }
      return c.html(
        <ErrorView
          status={error.status}
          title={error.title}
          detail={error.detail}
          signIn={error.status === 401 && authMode(c.env).kind === "dev"}
          viewer={c.get("viewer") ?? null}
          devSignIn={authMode(c.env).kind === "dev"}
        />,
        error.status,
      );
    }
    // hono's own refusals, e.g. csrf() answering a cross-origin form post with 403: the client's, not an internal error.
    if (error instanceof HTTPException && error.status < 500) {
      const refused = error.status === 403;
      return c.html(
        <ErrorView
          status={error.status}
          title={refused ? "Request refused" : "Bad request"}
          detail={refused ? "Forms must be submitted from the admin's own pages." : "The request could not be understood."}
        />,
        error.status,
      );
    }
    log.error("admin.unhandled_error", { method: c.req.method, path: new URL(c.req.url).pathname, error });
    return c.html(<ErrorView status={500} title="Something went wrong" detail="The error has been logged. Try again in a moment." />, 500);
  });

  // --- Local dev sign-in: exists only in dev mode. ---
  admin.get("/sign-in", async (c) => {
    const mode = authMode(c.env);
    if (mode.kind !== "dev") {
      if (mode.kind === "misconfigured") throw new AdminHttpError(503, "Admin sign-in is not configured", mode.problem);
      return c.notFound();
    }
    const res = await c.env.DB.prepare(
      `SELECT u.id, u.email, u.name, GROUP_CONCAT(w.name || ': ' || m.role, ', ') AS roles
         FROM users u JOIN memberships m ON m.user_id = u.id JOIN workspaces w ON w.id = m.workspace_id
        GROUP BY u.id ORDER BY u.email LIMIT 50`,
    ).all<{ id: string; email: string; name: string; roles: string }>();
    return c.html(<SignInView users={res.results} />);
  });

  admin.post("/sign-in", async (c) => {
    const mode = authMode(c.env);
    if (mode.kind !== "dev") return c.notFound();
    const form = await c.req.parseBody();
    const userId = typeof form.userId === "string" ? form.userId : "";
    const user = await c.env.DB.prepare("SELECT id FROM users WHERE id = ?").bind(userId).first<{ id: string }>();
    if (!user) throw new AdminHttpError(401, "Unknown user", "Choose one of the listed users.");
    await startSession(c, mode.sessionSecret, user.id);
    return c.redirect("/admin/operations", 303);
  });

  admin.post("/sign-out", async (c) => {
    const mode = authMode(c.env);
    await endSession(c, mode.kind === "dev" ? mode.sessionSecret : null);
    return c.redirect(mode.kind === "dev" ? "/admin/sign-in" : "/admin/operations", 303);
  });

  // --- Everything else needs a viewer. ---
  admin.use("*", requireViewer(deps));
  admin.route("/settings", createSettings());
  admin.route("/operations", createRunActions());

  const devSignIn = (c: Context<AdminEnv>) => authMode(c.env).kind === "dev";

  admin.get("/", (c) => c.redirect("/admin/operations", 302));

  admin.post("/workspace", async (c) => {
    const form = await c.req.parseBody();
    const id = typeof form.workspaceId === "string" ? form.workspaceId : "";
    if (!selectWorkspace(c, id)) throw new AdminHttpError(404, "No such workspace", "You are not a member of that workspace.");
    return c.redirect("/admin/operations", 303);
  });

  const readOperationsQuery = (c: Context<AdminEnv>) => {
    const q = operationsQuery.parse(emptyToUndefined(c.req.query()));
    const search = q.run === undefined ? undefined : normalizeRunId(q.run);
    const oq: OperationsQuery = {
      ...(q.display ? { display: q.display } : {}),
      ...(q.type ? { type: q.type } : {}),
      ...(q.range ? { range: q.range } : {}),
      ...(search?.ok ? { run: search.id } : {}),
    };
    const searchError = search && !search.ok ? search.error : null;
    return { oq, cursor: q.cursor, searchError };
  };

  const showDiagnostics = (c: Context<AdminEnv>) => can(c.get("viewer").current.role, "runs:diagnostics");

  const pageFilter = (oq: OperationsQuery, cursor: string | undefined, now: number): OperationsFilter => ({
    limit: PAGE_SIZE,
    ...(oq.run ? { runId: oq.run } : {}),
    ...(oq.display ? { display: oq.display } : {}),
    ...(oq.type ? { type: oq.type } : {}),
    ...(oq.range ? { since: rangeSince(oq.range, now) } : {}),
    ...(cursor ? { before: cursor } : {}),
  });

  admin.get("/operations", requireCapability("runs:read"), async (c) => {
    const now = Date.now();
    const { oq, cursor, searchError } = readOperationsQuery(c);
    const session = readSession(c.env.DB);
    const page = await operationsPage(session, c.get("viewer").current.workspaceId, pageFilter(oq, cursor, now), now);
    const poll = { state: stateAfterPage(page.changeToken, page, 0), bookmark: session.getBookmark() };
    return c.html(
      <Layout title="Operations" viewer={c.get("viewer")} active="operations" devSignIn={devSignIn(c)}>
        <OperationsView page={page} q={oq} types={operationTypes()} now={now} showDiagnostics={showDiagnostics(c)} searchError={searchError} poll={poll} />
      </Layout>,
    );
  });

  admin.get("/operations/live", requireCapability("runs:read"), async (c) => {
    const now = Date.now();
    const { oq } = readOperationsQuery(c);
    const raw = c.req.query();
    const session = readSession(c.env.DB, raw.b);
    const prev = parsePollState(pollStateQuery.parse(raw));
    const answer = await pollOperations(session, c.get("viewer").current.workspaceId, pageFilter(oq, undefined, now), prev, now);
    const poll = { state: answer.state, bookmark: session.getBookmark() };
    return answer.kind === "full"
      ? c.html(<LiveRegion page={answer.page} q={oq} now={now} showDiagnostics={showDiagnostics(c)} poll={poll} />)
      : c.html(<LiveRows runs={answer.runs} q={oq} now={now} showDiagnostics={showDiagnostics(c)} poll={poll} />);
  });

  admin.get("/operations/more", requireCapability("runs:read"), async (c) => {
    const now = Date.now();
    const { oq, cursor } = readOperationsQuery(c);
    const page = await operationsPage(readSession(c.env.DB), c.get("viewer").current.workspaceId, pageFilter(oq, cursor, now), now);
    return c.html(<MoreRows page={page} q={oq} now={now} showDiagnostics={showDiagnostics(c)} />);
  });

  const loadRun = async (c: Context<AdminEnv>) => {
    const id = c.req.param("id") ?? "";
    const db = readSession(c.env.DB);
    const run = RUN_ID.test(id) ? await runInWorkspace(db, c.get("viewer").current.workspaceId, id) : null;
    if (!run) throw new AdminHttpError(404, "Run not found", "There is no such run in this workspace.");
    return { run, db };
  };

  admin.get("/operations/:id", requireCapability("runs:read"), async (c) => {
    const now = Date.now();
    const { run, db } = await loadRun(c);
    const [events, retries] = await Promise.all([
      runTimeline(db, run.workspaceId, run.id),
      retriesOf(db, run.workspaceId, [run.id]),
    ]);
    const viewer = c.get("viewer");
    return c.html(
      <Layout title={`Run ${run.id}`} viewer={viewer} active="operations" devSignIn={devSignIn(c)}>
        <RunView run={run} events={events} now={now} showDiagnostics={showDiagnostics(c)} canAct={canActOnRuns(c)} retriedBy={retries.get(run.id) ?? []} />
      </Layout>,
    );
  });

  admin.get("/operations/:id/live", requireCapability("runs:read"), async (c) => {
    const now = Date.now();
    const { run, db } = await loadRun(c);
    const events = await runTimeline(db, run.workspaceId, run.id);
    return c.html(
      <>
        <RunSummary run={run} now={now} showDiagnostics={showDiagnostics(c)} canAct={canActOnRuns(c)} />
        <Timeline events={events} now={now} />
        {/* Replaced only once the run can no longer be cancelled, so an open Cancel form is left alone. */}
        {cancellable(run) ? null : <RunActions run={run} canCancel={false} oob />}
        <RunPoller run={run} />
      </>,
    );
  });

  const readAuditQuery = (c: Context<AdminEnv>) => {
    const q = auditQuery.parse(emptyToUndefined(c.req.query()));
    const aq: AuditQuery = {
      ...(q.action ? { action: q.action } : {}),
      ...(q.actor ? { actor: q.actor } : {}),
      ...(q.run ? { run: q.run } : {}),
    };
    return { aq, cursor: q.cursor, event: q.event };
  };

  admin.get("/audit-log", requireCapability("audit:read"), async (c) => {
    const now = Date.now();
    const { aq, cursor, event } = readAuditQuery(c);
    const ws = c.get("viewer").current.workspaceId;
    const db = readSession(c.env.DB);
    const [page, open] = await Promise.all([
      listAuditEvents(db, ws, {
        limit: PAGE_SIZE,
        ...(aq.action ? { action: aq.action } : {}),
        ...(aq.actor ? { actorKind: aq.actor } : {}),
        ...(aq.run ? { runId: aq.run } : {}),
        ...(cursor ? { before: cursor } : {}),
      }),
      event ? getAuditEvent(db, ws, event) : Promise.resolve(null),
    ]);
    if (event && !open) throw new AdminHttpError(404, "Event not found", "There is no such event in this workspace.");
    return c.html(
      <Layout title="Audit log" viewer={c.get("viewer")} active="audit" devSignIn={devSignIn(c)}>
        <AuditView events={page.events} nextCursor={page.nextCursor} q={aq} open={open} now={now} />
      </Layout>,
    );
  });

  admin.get("/audit-log/events/:id", requireCapability("audit:read"), async (c) => {
    const id = c.req.param("id");
    const e = EVENT_ID.test(id) ? await getAuditEvent(readSession(c.env.DB), c.get("viewer").current.workspaceId, id) : null;
    if (!e) throw new AdminHttpError(404, "Event not found", "There is no such event in this workspace.");
    const { aq } = readAuditQuery(c);
    return c.html(<EventDetail e={e} q={aq} />);
  });

  admin.get("/lifecycle", requireCapability("lifecycle:read"), (c) => {
    const types = operationTypes().map((type) => {
      const op = getOperation(type)!;
      return { type, description: op.description, policy: op.policy };
    });
    return c.html(
      <Layout title="Lifecycle" viewer={c.get("viewer")} active="lifecycle" devSignIn={devSignIn(c)}>
        <LifecycleView types={types} report={runtimeContract()} settings={DEFAULT_SETTINGS} />
      </Layout>,
    );
  });

  return admin;
}
