/** Releases, deploys (canary) and rollbacks of one service. */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps, ReleasesApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { route } from "../route.ts";
import { releasesSchema, rollbackPlanSchema, rolloutSchema } from "./schemas.ts";

const serviceParams = z.object({ service: z.string().min(1) }).strict();

const deployBody = z
  .object({
    version: z.string().min(1),
    reason: z.string().max(1000).optional(),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

const rollbackBody = z
  .object({
    to: z.string().min(1).optional().describe("a release this service has run (default: the previous one)"),
    force: z.boolean().optional().describe("override the safety checks (admin; audited with the reason)"),
    reason: z.string().optional(),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

/** Declares the release routes on `app`. */
export function releaseRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const releases = (): ReleasesApi => {
    if (deps.releases === undefined)
      throw new HomeostatError("HS_NOT_FOUND", "release management is not available");
    return deps.releases;
  };

  route(app, {
    method: "GET",
    url: "/v1/services/:service/releases",
    summary: "A service's release ledger and its deploys and rollbacks",
    tag: "releases",
    access: "viewer",
    params: serviceParams,
    responses: { 200: { description: "releases", schema: releasesSchema } },
    handler: ({ params }) => releases().releases(params.service),
  });

  route(app, {
    method: "POST",
    url: "/v1/services/:service/deploy",
    summary: "Deploy a release (canary steps, analysis, automatic rollback)",
    tag: "releases",
    access: "operator",
    params: serviceParams,
    body: deployBody,
    responses: { 202: { description: "the rollout, started", schema: z.object({ rollout: rolloutSchema }) } },
    handler: ({ params, body, request, reply }) => {
      manualGate(deps, request, `deploy of ${params.service} ${body.version}`, body);
      const rollout = releases().deploy(params.service, body.version);
      return reply.status(202).send({ rollout });
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/services/:service/rollback-plan",
    summary: "What a rollback would do and whether its safety checks allow it (changes nothing)",
    tag: "releases",
    access: "viewer",
    params: serviceParams,
    query: z.object({ to: z.string().min(1).optional() }).strict(),
    responses: { 200: { description: "the plan", schema: rollbackPlanSchema } },
    handler: ({ params, query }) => releases().planRollback(params.service, query.to),
  });

  route(app, {
    method: "POST",
    url: "/v1/services/:service/rollback",
    summary: "Roll back to a release this service has run (force: admin, overrides the safety checks)",
    tag: "releases",
    access: "operator",
    elevate: ({ body }) => (body.force === true ? { role: "admin", what: "a forced rollback" } : undefined),
    elevatesTo: { role: "admin", when: "`force: true`" },
    params: serviceParams,
    body: rollbackBody,
    responses: {
      202: {
        description: "the plan and the rollback, started",
        schema: z.looseObject({ plan: rollbackPlanSchema, rollout: rolloutSchema }),
      },
    },
    handler: ({ params, body, request, reply }) => {
      manualGate(deps, request, `rollback of ${params.service}`, body);
      const result = releases().rollback(params.service, {
        ...(body.to === undefined ? {} : { to: body.to }),
        ...(body.force === undefined ? {} : { force: body.force }),
        ...(body.reason === undefined ? {} : { reason: body.reason }),
      });
      return reply.status(202).send(result);
    },
  });
}
