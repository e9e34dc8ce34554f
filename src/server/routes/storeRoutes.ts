/** Replicated stores (issue 16): topology, replication lag and epoch; planned switchover. See docs/redis.md. */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps, StoresApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { route } from "../route.ts";

const memberSchema = z.looseObject({
  name: z.string(),
  zone: z.string(),
  host: z.string(),
  port: z.number().int(),
  pid: z.number().int().nullable(),
  process: z.enum(["running", "exited"]),
  reachable: z.boolean(),
  role: z.enum(["primary", "replica"]).nullable(),
  offset: z.number().nullable().describe("replication offset (bytes of replication stream processed)"),
  lagBytes: z.number().nullable().describe("bytes behind the primary at the last observation"),
  linkUp: z.boolean(),
  follows: z.string().nullable().describe("the member it replicates from"),
});

/** One store as `GET /v1/stores` shows it. */
export const storeStatusSchema = z.looseObject({
  name: z.string(),
  kind: z.literal("redis"),
  epoch: z
    .number()
    .int()
    .describe("incremented by every promotion (journaled): the topology's fencing token"),
  primary: z.string(),
  phase: z
    .enum(["starting", "healthy", "failing-over", "refused", "held", "verifying", "switching-over"])
    .describe("held: a failover the pause of automation holds (docs/brakes.md)"),
  endpoint: z.looseObject({ address: z.string(), port: z.number().int(), primary: z.string().nullable() }),
  sentinel: z.looseObject({ port: z.number().int(), announce: z.enum(["endpoint", "primary"]) }).nullable(),
  members: z.array(memberSchema),
  lastFailover: z
    .looseObject({
      at: z.number(),
      from: z.string(),
      to: z.string(),
      epoch: z.number().int(),
      kind: z.enum(["failover", "switchover"]),
      lossBytes: z.number(),
    })
    .nullable(),
  openIncident: z.number().int().nullable(),
  held: z
    .array(
      z.looseObject({
        kind: z.enum(["failover", "restart"]),
        target: z.string().describe("the store (failover) or the member (restart)"),
        since: z.number(),
        reason: z.string(),
      }),
    )
    .describe("automated actions the pause of automation holds now"),
});

const storeParams = z.object({ store: z.string().min(1) }).strict();

const switchoverBody = z
  .object({
    to: z.string().min(1).optional().describe("the replica to promote; default: the best one"),
    reason: z.string().max(1000).default("").describe("why (journaled); required with override"),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

const switchoverAnswer = z.looseObject({
  store: z.string(),
  from: z.string(),
  to: z.string(),
  epoch: z.number().int(),
  caughtUpMs: z
    .number()
    .describe("from pausing writes to the target holding every byte of the primary's stream"),
  pausedMs: z.number().describe("how long writes were paused on the old primary"),
});

/** Declares the store routes on `app`. */
export function storeRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const stores = (): StoresApi => {
    if (deps.stores === undefined) throw new HomeostatError("HS_NOT_FOUND", "this fleet declares no stores");
    return deps.stores;
  };

  route(app, {
    method: "GET",
    url: "/v1/stores",
    summary: "Replicated stores: topology, replication lag, epoch, phase",
    tag: "stores",
    access: "viewer",
    responses: {
      200: { description: "every store", schema: z.object({ stores: z.array(storeStatusSchema) }) },
    },
    handler: () => ({ stores: deps.stores?.list() ?? [] }),
  });

  route(app, {
    method: "GET",
    url: "/v1/stores/:store",
    summary: "One replicated store",
    tag: "stores",
    access: "viewer",
    params: storeParams,
    responses: { 200: { description: "the store", schema: storeStatusSchema } },
    handler: ({ params }) => {
      const found = stores()
        .list()
        .find((s) => s.name === params.store);
      if (found === undefined) throw new HomeostatError("HS_NOT_FOUND", `no store "${params.store}"`);
      return found;
    },
  });

  route(app, {
    method: "POST",
    url: "/v1/stores/:store/switchover",
    summary: "Planned switchover: pause writes, let the replica catch up, promote it (no write lost)",
    description:
      "A person's action: refused with 409 HS_PAUSED while automation is paused, unless `override: true` with a `reason` (audited, and an `automation.overridden` event).",
    tag: "stores",
    access: "operator",
    params: storeParams,
    body: switchoverBody,
    responses: { 200: { description: "the switchover, done", schema: switchoverAnswer } },
    handler: async ({ params, body, request }) => {
      const api = stores();
      manualGate(deps, request, `switchover of ${params.store}`, body);
      return api.switchover(params.store, {
        ...(body.to === undefined ? {} : { to: body.to }),
        reason: body.reason,
        // Journaled with the request: a switchover that stepped over a pause says so.
        ...(body.override === true ? { override: true } : {}),
      });
    },
  });
}
