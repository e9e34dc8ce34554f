/**
 * A person's action through the API (deploy, rollback, failover, failback, restart, apply, weights,
 * faults, a data-plane restart) while automation may be paused: refused with HS_PAUSED unless the
 * body says `override: true` with a `reason` — which the audit trail records with the request.
 */

import type { FastifyRequest } from "fastify";
import type { ApiDeps } from "./api.ts";
import { principalOf } from "./route.ts";

/** Throws unless the brakes let this person's action through (nothing to check without brakes). */
export function manualGate(
  deps: ApiDeps,
  request: FastifyRequest,
  what: string,
  body: { override?: boolean | undefined; reason?: string | undefined },
): void {
  deps.brakes?.assertManual({
    what,
    override: body.override === true,
    reason: body.reason ?? "",
    who: principalOf(request).name,
  });
}
