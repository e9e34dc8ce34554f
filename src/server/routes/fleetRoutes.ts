/**
 * The fleet's own routes: liveness, the status document, events, incidents, the action journal,
 * and shutdown.
 */

import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError } from "../../errors.ts";
import type { ApiDeps } from "../api.ts";
import { route } from "../route.ts";
import {
  eventSchema,
  incidentSchema,
  incidentWithTimelineSchema,
  journalSchema,
  statusSchema,
} from "./schemas.ts";

/** A change with nothing to say: `{}` (unknown fields are refused like everywhere else). */
export const emptyBody = z.object({}).strict();

/**
 * `POST /v1/shutdown`: `{}` stops everything; `{"keepFleet": true}` stops the controller alone
 * (`homeostat down --keep-fleet`: how Homeostat itself is upgraded, docs/operations.md).
 */
const shutdownBody = z
  .object({
    keepFleet: z
      .boolean()
      .optional()
      .describe("leave the instances and the data plane running for the next controller to adopt"),
  })
  .strict();

const limit = (max: number, fallback: number) => z.coerce.number().int().min(1).max(max).default(fallback);

const eventsQuery = z
  .object({
    after: z.coerce.number().int().min(0).optional().describe("only events with a larger seq"),
    limit: limit(10_000, 200),
    service: z.string().optional(),
  })
  .strict();

const incidentsQuery = z
  .object({
    status: z.enum(["open", "closed"]).optional(),
    service: z.string().optional(),
    limit: limit(10_000, 100),
  })
  .strict();

const journalQuery = z
  .object({ limit: limit(10_000, 100), pending: z.enum(["true", "false"]).optional() })
  .strict();

/** Declares the fleet routes on `app`. */
export function fleetRoutes(app: FastifyInstance, deps: ApiDeps): void {
  route(app, {
    method: "GET",
    url: "/healthz",
    summary: "Liveness: the controller answers",
    tag: "fleet",
    access: "public",
    responses: { 200: { description: "alive", schema: z.object({ ok: z.literal(true) }) } },
    handler: () => ({ ok: true as const }),
  });

  route(app, {
    method: "GET",
    url: "/v1/status",
    summary: "The status document: services, instances, zones' headroom, the data plane",
    tag: "fleet",
    access: "viewer",
    responses: { 200: { description: "the fleet now", schema: statusSchema } },
    handler: () => deps.status(),
  });

  route(app, {
    method: "GET",
    url: "/v1/events",
    summary: "Events, oldest first (resume with ?after=SEQ)",
    tag: "fleet",
    access: "viewer",
    query: eventsQuery,
    responses: { 200: { description: "events", schema: z.object({ events: z.array(eventSchema) }) } },
    handler: ({ query }) => ({
      events: deps.store.listEvents({ afterSeq: query.after, limit: query.limit, service: query.service }),
    }),
  });

  route(app, {
    method: "GET",
    url: "/v1/incidents",
    summary: "Incidents, newest first",
    tag: "fleet",
    access: "viewer",
    query: incidentsQuery,
    responses: {
      200: { description: "incidents", schema: z.object({ incidents: z.array(incidentSchema) }) },
    },
    handler: ({ query }) => ({
      incidents: deps.store.listIncidents({
        status: query.status,
        service: query.service,
        limit: query.limit,
      }),
    }),
  });

  route(app, {
    method: "GET",
    url: "/v1/incidents/:id",
    summary: "One incident",
    tag: "fleet",
    access: "viewer",
    params: z.object({ id: z.coerce.number().int().min(1) }).strict(),
    responses: {
      200: { description: "the incident", schema: z.object({ incident: incidentWithTimelineSchema }) },
    },
    handler: ({ params }) => {
      const incident = deps.store.getIncident(params.id);
      if (incident === null) throw new HomeostatError("HS_NOT_FOUND", `no incident ${params.id}`);
      return { incident };
    },
  });

  route(app, {
    method: "GET",
    url: "/v1/journal",
    summary: "The action journal: what the controller meant to do, and what came of it",
    tag: "fleet",
    access: "viewer",
    query: journalQuery,
    responses: {
      200: { description: "journal entries", schema: z.object({ journal: z.array(journalSchema) }) },
    },
    handler: ({ query }) => ({
      journal: deps.store.listJournal({ limit: query.limit, pendingOnly: query.pending === "true" }),
    }),
  });

  route(app, {
    method: "POST",
    url: "/v1/shutdown",
    summary: "Stop every instance, then the controller; with keepFleet, the controller alone (answers first)",
    tag: "fleet",
    access: "admin",
    body: shutdownBody,
    responses: {
      202: {
        description: "stopping",
        schema: z.object({ ok: z.literal(true), message: z.string() }),
      },
    },
    handler: ({ body, reply }) => {
      const keepFleet = body.keepFleet === true;
      // Answer first: the caller (`homeostat down`) waits for the controller to go away on its own.
      void reply.status(202).send({
        ok: true,
        message: keepFleet
          ? "stopping the controller; instances and the data plane keep running for the next `homeostat up` to adopt"
          : "stopping every instance, then the controller",
      });
      setImmediate(() => void deps.shutdown({ keepFleet }));
      return reply;
    },
  });
}
