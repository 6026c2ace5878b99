/** The HTTP surface: the JSON API and the admin. Static assets are served by the platform first. */
import { Hono } from "hono";
import { createAdmin } from "./admin/routes";
import { api, apiResponseHeaders } from "./api/app";
import { allowedMethods } from "./api/methods";
import { problemResponse, problems } from "./api/problem";

export const app = new Hono<{ Bindings: Env }>();

app.get("/", (c) => c.redirect("/admin/operations"));
// The admin's "/" route answers "/admin"; a typed "/admin/" lands there too.
app.get("/admin/", (c) => c.redirect("/admin/operations"));
app.use("/api/*", apiResponseHeaders);
app.route("/api/v1", api);
app.route("/admin", createAdmin());

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  if (path.startsWith("/api/")) {
    const allow = allowedMethods(app.routes, path);
    return problemResponse(allow.length > 0 ? problems.methodNotAllowed(c.req.method, allow) : problems.notFound("route"), path);
  }
  return c.text("Not found", 404);
});
