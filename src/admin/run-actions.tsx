/**
 * Operators act on runs from the admin (contract section 7): `POST
 * /admin/operations/{run}/cancel`. Owners and operators only (a viewer gets
 * 403, even with a hand-made form); another workspace's run is a 404; the
 * admin's csrf() Origin check refuses a form posted from elsewhere. The cancel
 * is the API's (src/cancel-run.ts), with the signed-in person as the actor.
 */
import { Hono } from "hono";
import { cancelRun } from "../cancel-run";
import { MAX_CANCEL_REASON_LENGTH } from "../runs";
import { AdminHttpError, requireCapability, type AdminEnv } from "./auth/viewer";

export function createRunActions() {
  const actions = new Hono<AdminEnv>();

  actions.post("/:id/cancel", requireCapability("runs:cancel"), async (c) => {
    const form = await c.req.parseBody();
    const reason = typeof form.reason === "string" ? form.reason.trim() : "";
    if (reason.length > MAX_CANCEL_REASON_LENGTH) {
      throw new AdminHttpError(400, "Reason too long", `A cancel reason is at most ${MAX_CANCEL_REASON_LENGTH} characters; nothing was cancelled.`);
    }
    const viewer = c.get("viewer");
    const answer = await cancelRun(c.env, {
      workspaceId: viewer.current.workspaceId,
      runId: c.req.param("id"),
      actor: `user:${viewer.user.email}`,
      actorId: viewer.user.id,
      reason: reason === "" ? null : reason,
    });
    switch (answer.kind) {
      case "not_found":
        throw new AdminHttpError(404, "Run not found", "There is no such run in this workspace.");
      case "unavailable":
        throw new AdminHttpError(503, "Cancel not taken", "The run's scheduler could not take the cancel just now; nothing changed. Try again.");
      case "terminal":
        throw new AdminHttpError(409, "Run already ended", "This run has already ended; cancelling it changes nothing.");
      case "cancelled":
      case "cancelling":
        // Post/redirect/get: the run's page shows Cancelling or Cancelled.
        return c.redirect(`/admin/operations/${encodeURIComponent(answer.run.id)}`, 303);
    }
  });

  return actions;
}
