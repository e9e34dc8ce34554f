/** Zone failover: the shared-fate and headroom check, plans, state, failover and failback. */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps, FailoverApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { route } from "../route.ts";
import { failoverCheckSchema, failoverPlanSchema, failoverStateSchema, zoneShiftSchema } from "./schemas.ts";

const failoverBody = z
  .object({
    domain: z.string().min(1).describe("the zone to evacuate"),
    reason: z.string().default(""),
    override: z
      .boolean()
      .default(false)
      .describe("override the safety rules, and a pause of automation (admin; needs a reason)"),
  })
  .strict();

const failbackBody = z
  .object({
    domain: z.string().min(1),
    reason: z.string().default(""),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

const shiftAnswer = z.object({ shift: zoneShiftSchema, failover: failoverStateSchema });

/** Declares the failover routes on `app`. */
export function failoverRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const failover = (): FailoverApi => {
    if (deps.failover === undefined)
      throw new HomeostatError("HS_NOT_FOUND", "failover planning is not available");
    return deps.failover;
  };

  route(app, {
    method: "GET",
    url: "/v1/check",
    summary: "Shared fate between zones and static stability (can the fleet lose any one zone?)",
    tag: "failover",
    access: "viewer",
    responses: { 200: { description: "findings and headroom", schema: failoverCheckSchema } },
    handler: () => failover().check(),
  });

  route(app, {
    method: "GET",
    url: "/v1/failover-plan",
    summary: "How evacuating a zone would go, step by step (changes nothing)",
    tag: "failover",
    access: "viewer",
    query: z.object({ domain: z.string().min(1) }).strict(),
    responses: { 200: { description: "the plan", schema: failoverPlanSchema } },
    handler: ({ query }) => failover().plan(query.domain),
  });

  route(app, {
    method: "GET",
    url: "/v1/failover",
    summary: "Zones, their health and traffic shares, and survivor protection now",
    tag: "failover",
    access: "viewer",
    responses: { 200: { description: "failover state", schema: failoverStateSchema } },
    handler: () => failover().state(),
  });

  route(app, {
    method: "POST",
    url: "/v1/failover",
    summary: "Evacuate a zone (override: admin, overrides the safety rules)",
    tag: "failover",
    access: "operator",
    elevate: ({ body }) => (body.override ? { role: "admin", what: "an override failover" } : undefined),
    elevatesTo: { role: "admin", when: "`override: true`" },
    body: failoverBody,
    responses: { 202: { description: "the shift, started", schema: shiftAnswer } },
    handler: ({ body, request, reply }) => {
      manualGate(deps, request, `failover of ${body.domain}`, body);
      const shift = failover().failover(body.domain, { reason: body.reason, override: body.override });
      return reply.status(202).send({ shift, failover: failover().state() });
    },
  });

  route(app, {
    method: "POST",
    url: "/v1/failback",
    summary: "Bring a zone's traffic back, through the failback hysteresis",
    tag: "failover",
    access: "operator",
    body: failbackBody,
    responses: { 202: { description: "the shift, failing back", schema: shiftAnswer } },
    handler: ({ body, request, reply }) => {
      manualGate(deps, request, `failback of ${body.domain}`, body);
      const shift = failover().failback(body.domain, { reason: body.reason });
      return reply.status(202).send({ shift, failover: failover().state() });
    },
  });
}
