/**
 * Automation brakes: their state, pause and resume (docs/brakes.md), and a person's restart of one
 * instance — the manual action an operator takes when a brake holds the automated one.
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps, BrakesApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { principalOf, route } from "../route.ts";
import { brakesStatusSchema, pauseSchema } from "./brakeSchemas.ts";

const pauseBody = z
  .object({
    reason: z
      .string({ error: "pause needs a reason: it is shown to everyone while automation is paused" })
      .max(1000)
      .describe("why automation is paused (required, shown in status)"),
  })
  .strict();

const resumeBody = z.object({ reason: z.string().max(1000).optional() }).strict();

const restartBody = z
  .object({
    reason: z.string().max(1000).optional(),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

/** Declares the brake routes on `app`. */
export function brakeRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const brakes = (): BrakesApi => {
    if (deps.brakes === undefined)
      throw new HomeostatError("HS_NOT_FOUND", "automation brakes are not available");
    return deps.brakes;
  };

  route(app, {
    method: "GET",
    url: "/v1/brakes",
    summary:
      "Automation brakes: paused or not (by whom, why, since), each limit and how close it is, held actions",
    tag: "brakes",
    access: "viewer",
    responses: { 200: { description: "the brakes", schema: brakesStatusSchema } },
    handler: () => brakes().status(),
  });

  route(app, {
    method: "POST",
    url: "/v1/pause",
    summary:
      "Pause automation: no automated restart, rollback or failover starts; manual actions need override",
    tag: "brakes",
    access: "operator",
    body: pauseBody,
    responses: {
      200: { description: "paused", schema: z.object({ paused: pauseSchema, brakes: brakesStatusSchema }) },
    },
    handler: ({ body, request }) => {
      const paused = brakes().pause(principalOf(request).name, body.reason);
      return { paused, brakes: brakes().status() };
    },
  });

  route(app, {
    method: "POST",
    url: "/v1/resume",
    summary: "Resume automation (409 when it is not paused)",
    tag: "brakes",
    access: "operator",
    body: resumeBody,
    responses: {
      200: {
        description: "resumed: the pause that ended",
        schema: z.object({ ended: pauseSchema, brakes: brakesStatusSchema }),
      },
    },
    handler: ({ body, request }) => {
      const ended = brakes().resume(principalOf(request).name, body.reason ?? "");
      return { ended, brakes: brakes().status() };
    },
  });

  route(app, {
    method: "POST",
    url: "/v1/instances/:instance/restart",
    summary: "Restart one instance by hand (running: drained and replaced; not running: started now)",
    description:
      "A person's action: refused with 409 HS_PAUSED while automation is paused, unless `override: true` with a `reason` (audited). Not counted against the automated-restart rate limit.",
    tag: "brakes",
    access: "operator",
    params: z.object({ instance: z.string().min(1) }).strict(),
    body: restartBody,
    responses: {
      202: {
        description: "the restart, started",
        schema: z.object({ instance: z.string(), action: z.enum(["replacing", "starting"]) }),
      },
    },
    handler: ({ params, body, request, reply }) => {
      const b = brakes();
      manualGate(deps, request, `restart of ${params.instance}`, body);
      const action = b.restart(params.instance, body.reason ?? "", principalOf(request).name);
      return reply.status(202).send({ instance: params.instance, action });
    },
  });
}
