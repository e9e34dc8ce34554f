/**
 * The data plane's routes: metrics, per-service traffic state and weights, injected faults, and
 * the data-plane process itself.
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { FaultRuleInput } from "../../traffic/faults.ts";
import type { ApiDeps, TrafficApi } from "../api.ts";
import { manualGate } from "../manualGate.ts";
import { route } from "../route.ts";
import { emptyBody } from "./fleetRoutes.ts";
import { dataPlaneStatusSchema, faultSchema, serviceTrafficSchema } from "./schemas.ts";

const serviceParams = z.object({ service: z.string().min(1) }).strict();

const weightsBody = z
  .object({
    weights: z
      .record(z.string(), z.number().finite().min(0))
      .nullable()
      .describe("share per release version; null clears the split"),
    reason: z.string().max(1000).optional(),
    override: z.boolean().optional().describe("act although automation is paused (needs a reason; audited)"),
  })
  .strict();

const faultBody = z
  .object({
    service: z.string().optional(),
    instance: z.string().optional(),
    zone: z.string().optional(),
    fault: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("latency"), ms: z.number().int() }).strict(),
      z.object({ kind: z.literal("error"), status: z.number().int(), rate: z.number().optional() }).strict(),
      z.object({ kind: z.literal("reset"), rate: z.number().optional() }).strict(),
      z.object({ kind: z.literal("blackhole") }).strict(),
    ]),
    reason: z.string().max(1000).optional(),
    override: z
      .boolean()
      .optional()
      .describe("inject although automation is paused (needs a reason; audited)"),
  })
  .strict();

/** Whether the data plane confirmed the change (false: it applies once the data plane is back). */
const applied = z.boolean().describe("the data plane serves the change now");

/** Declares the traffic routes on `app`. */
export function trafficRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const traffic = (): TrafficApi => {
    if (deps.traffic === undefined) {
      throw new HomeostatError("HS_NOT_FOUND", "no service of this fleet has a traffic listener (`port`)");
    }
    return deps.traffic;
  };

  route(app, {
    method: "GET",
    url: "/metrics",
    summary:
      "Prometheus metrics of the controller (homeostat_controller_*) and the data plane (homeostat_proxy_*)",
    tag: "traffic",
    access: "viewer",
    responses: {
      200: {
        description: "Prometheus text exposition format",
        schema: z.string(),
        contentType: "text/plain",
      },
    },
    handler: async ({ reply }) => {
      // Two registries, two processes: their expositions concatenate (the prefixes never collide).
      const parts = (
        await Promise.all([deps.controllerMetrics?.exposition(), deps.traffic?.metrics()])
      ).filter((part) => part !== undefined);
      const text = parts
        .map((p) => (p.text === "" || p.text.endsWith("\n") ? p.text : `${p.text}\n`))
        .join("");
      return reply.type(parts[0]?.contentType ?? "text/plain; version=0.0.4; charset=utf-8").send(text);
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/traffic",
    summary: "Each service's proxy: endpoints, balancer, weights, shedding, limits",
    tag: "traffic",
    access: "viewer",
    responses: {
      200: {
        description: "traffic state by service name",
        schema: z.object({ services: z.record(z.string(), serviceTrafficSchema) }),
      },
    },
    handler: () => ({ services: (deps.traffic?.state() ?? {}) as Record<string, unknown> }),
  });

  route(app, {
    method: "PUT",
    url: "/v1/services/:service/weights",
    summary: "Split a service's traffic between its releases (or clear the split)",
    tag: "traffic",
    access: "operator",
    params: serviceParams,
    body: weightsBody,
    responses: {
      200: {
        description: "the split, applied atomically",
        schema: z.object({
          service: z.string(),
          weights: z.record(z.string(), z.number()).nullable(),
          applied,
        }),
      },
    },
    handler: async ({ params, body, request }) => {
      manualGate(deps, request, `traffic split of ${params.service}`, body);
      traffic().setWeights(params.service, body.weights);
      return { service: params.service, weights: body.weights, applied: await traffic().settled() };
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/dataplane",
    summary: "Where and how the data plane serves (process, snapshot versions, controller link)",
    tag: "traffic",
    access: "viewer",
    responses: {
      200: { description: "the data plane", schema: z.object({ dataPlane: dataPlaneStatusSchema }) },
    },
    handler: () => ({ dataPlane: traffic().dataPlane() }),
  });

  route(app, {
    method: "POST",
    url: "/v1/dataplane/restart",
    summary: "Planned restart of the data-plane process (listeners handed over, nothing refused)",
    tag: "traffic",
    access: "operator",
    body: z
      .object({
        reason: z.string().default(""),
        override: z
          .boolean()
          .optional()
          .describe("act although automation is paused (needs a reason; audited)"),
      })
      .strict(),
    responses: {
      200: {
        description: "the process generations before and after, per worker",
        schema: z.looseObject({
          from: z.number().int(),
          to: z.number().int(),
          workers: z.array(z.looseObject({ worker: z.number().int(), from: z.number(), to: z.number() })),
          dataPlane: dataPlaneStatusSchema,
        }),
      },
    },
    handler: async ({ body, request }) => {
      manualGate(deps, request, "data-plane restart", body);
      return traffic().restartDataPlane(body.reason);
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/faults",
    summary: "Injected faults in force",
    tag: "traffic",
    access: "viewer",
    responses: { 200: { description: "fault rules", schema: z.object({ faults: z.array(faultSchema) }) } },
    handler: () => ({ faults: deps.traffic?.listFaults() ?? [] }),
  });

  route(app, {
    method: "POST",
    url: "/v1/faults",
    summary: "Inject a fault (latency, error, reset, blackhole) into matching endpoints",
    tag: "traffic",
    access: "operator",
    body: faultBody,
    responses: {
      201: { description: "the rule, in force", schema: z.object({ fault: faultSchema, applied }) },
    },
    handler: async ({ body, request, reply }) => {
      // A drill while automation is paused would be an experiment nobody may stop (FIS stop conditions).
      manualGate(deps, request, "fault injection", body);
      const { reason: _, override: __, ...input } = body;
      const rule = traffic().addFault(input as FaultRuleInput);
      return reply.status(201).send({ fault: rule, applied: await traffic().settled() });
    },
  });

  route(app, {
    method: "DELETE",
    url: "/v1/faults/:id",
    summary: "Remove one injected fault",
    tag: "traffic",
    access: "operator",
    params: z.object({ id: z.string().min(1) }).strict(),
    body: emptyBody,
    responses: {
      200: { description: "removed", schema: z.object({ removed: z.string(), applied }) },
    },
    handler: async ({ params }) => {
      // Looked up first: an unknown id is refused before anything is journaled (removing nothing
      // is not an action; the fuzz test found a journal entry "fault nope removed" behind a 404).
      const known = traffic()
        .listFaults()
        .some((f) => f.id === params.id);
      if (!known || !traffic().removeFault(params.id)) {
        throw new HomeostatError("HS_NOT_FOUND", `no fault ${params.id}`);
      }
      return { removed: params.id, applied: await traffic().settled() };
    },
  });

  route(app, {
    method: "DELETE",
    url: "/v1/faults",
    summary: "Remove every injected fault",
    tag: "traffic",
    access: "operator",
    body: emptyBody,
    responses: {
      200: {
        description: "how many were removed",
        schema: z.object({ removed: z.number().int().min(0), applied }),
      },
    },
    handler: async () => {
      const removed = traffic().clearFaults();
      return { removed, applied: await traffic().settled() };
    },
  });
}
