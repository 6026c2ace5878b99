/** The HTTP surface: the JSON API and the admin. Static assets are served by the platform first. */
import { Hono } from "hono";
import { createAdmin } from "./admin/routes";
import { api } from "./api/app";
import { problemResponse, problems } from "./api/problem";

export const app = new Hono<{ Bindings: Env }>();

app.get("/", (c) => c.redirect("/admin/operations"));
// The admin's "/" route answers "/admin"; a typed "/admin/" lands there too.
app.get("/admin/", (c) => c.redirect("/admin/operations"));
app.route("/api/v1", api);
app.route("/admin", createAdmin());

app.notFound((c) => {
  const path = new URL(c.req.url).pathname;
  if (path.startsWith("/api/")) return problemResponse(problems.notFound("route"), path);
  return c.text("Not found", 404);
});
