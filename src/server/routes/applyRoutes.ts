/** `homeostat apply`: take a new fleet file while the controller runs (plan, revision, progress). */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps, ApplyApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { principalOf, route } from "../route.ts";

const applyBody = z
  .object({
    text: z.string().max(1_000_000).optional().describe("the fleet file's full text"),
    file: z.string().min(1).max(4096).optional().describe("the fleet file's path (errors name it)"),
    reason: z.string().max(1000).optional(),
    dryRun: z.boolean().optional().describe("plan only: change nothing, record nothing"),
    allowInPlace: z
      .boolean()
      .optional()
      .describe("roll an edited release definition (or moved slots) one instance at a time"),
    revision: z.number().int().positive().optional().describe("re-apply this earlier revision's text"),
    override: z
      .boolean()
      .optional()
      .describe("apply although automation is paused (needs a reason; audited)"),
  })
  .strict();

const specChangeSchema = z.object({
  service: z.string().nullable(),
  path: z.string(),
  class: z.string(),
  before: z.unknown(),
  after: z.unknown(),
  detail: z.string(),
});

const applyAnswerSchema = z.object({
  dryRun: z.boolean(),
  revision: z.number().nullable().describe("the revision recorded (null: dry run or nothing to change)"),
  state: z.enum(["planned", "applying", "applied", "unchanged"]),
  changes: z.array(specChangeSchema),
  steps: z.array(z.string()).describe("what the apply does, in order"),
});

const applyProgressSchema = z.object({
  revision: z.number().nullable(),
  state: z.enum(["idle", "applying", "applied", "failed"]),
  waiting: z
    .array(z.string())
    .describe(
      "what convergence still waits for; on a failed revision, the instances it rolled in place still going back to the previous definition",
    ),
  error: z.string().nullable(),
});

/** Declares the apply routes on `app`. */
export function applyRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const applier = (): ApplyApi => {
    if (deps.apply === undefined) throw new HomeostatError("HS_NOT_FOUND", "apply is not available");
    return deps.apply;
  };

  route(app, {
    method: "POST",
    url: "/v1/apply",
    summary:
      "Apply a fleet file to the running fleet (validated, planned, recorded as a revision, converged)",
    description:
      "Any validation error changes nothing (400, HS_SPEC_INVALID, with file:line:col problems). Refused (409) while a deploy, rollback or failover holds an affected service, for a release definition edited under its name without allowInPlace, and for removing a service another depends on. `dryRun` answers the plan only.",
    tag: "fleet",
    access: "operator",
    body: applyBody,
    responses: {
      200: { description: "the plan (dry run, or nothing to change)", schema: applyAnswerSchema },
      202: { description: "the revision recorded and being converged to", schema: applyAnswerSchema },
    },
    handler: ({ body, request, reply }) => {
      if (body.dryRun !== true) manualGate(deps, request, "apply", body);
      const answer = applier().apply(
        {
          ...(body.text === undefined ? {} : { text: body.text }),
          ...(body.file === undefined ? {} : { file: body.file }),
          ...(body.reason === undefined ? {} : { reason: body.reason }),
          ...(body.dryRun === undefined ? {} : { dryRun: body.dryRun }),
          ...(body.allowInPlace === undefined ? {} : { allowInPlace: body.allowInPlace }),
          ...(body.revision === undefined ? {} : { revision: body.revision }),
        },
        principalOf(request).name,
      );
      return reply.status(answer.state === "applying" ? 202 : 200).send(answer);
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/apply",
    summary: "Where the last apply stands: converging (and what it waits for), applied or failed",
    tag: "fleet",
    access: "viewer",
    responses: { 200: { description: "progress", schema: applyProgressSchema } },
    handler: () => applier().progress(),
  });
}
