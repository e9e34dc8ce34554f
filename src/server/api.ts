/**
 * The controller's local JSON API (Fastify), bound to 127.0.0.1. The CLI is a client of it; so
 * will the dashboard be. Every error answers with `{ error: { code, message } }` and a 4xx/5xx.
 * No ambient authority (see ./requestGuards.ts): `Host` must be the address it listens on, a
 * change needs a JSON body and no foreign `Origin`, and no CORS header is ever sent.
 */

import Fastify, { type FastifyInstance } from "fastify";
import { z } from "zod";
import { HomeostatError, httpStatusFor } from "../errors.ts";
import type { EventRecord, IncidentRecord, JournalRecord, StateStore } from "../store/index.ts";
import type { FaultRule, FaultRuleInput } from "../traffic/faults.ts";
import { installRequestGuards } from "./requestGuards.ts";

/** The data plane as the API exposes it (absent when no service has a front port). */
export interface TrafficApi {
  state(): unknown;
  metrics(): Promise<{ contentType: string; text: string }>;
  /** Validates, applies atomically, records an event; throws HomeostatError on bad input. */
  setWeights(service: string, weights: Record<string, number> | null): void;
  listFaults(): FaultRule[];
  addFault(input: FaultRuleInput): FaultRule;
  removeFault(id: string): boolean;
  clearFaults(): number;
  /**
   * Resolves once the data plane serves every change made so far (true), or false when it has not
   * confirmed them within a few seconds (it is restarting or unreachable; they apply when it is back).
   */
  settled(): Promise<boolean>;
  /** Where and how the data plane serves (process, snapshot versions, controller link). */
  dataPlane(): unknown;
  /** Planned restart of the data-plane process (listeners handed over, nothing refused). */
  restartDataPlane(reason: string): Promise<unknown>;
}

import type { StatusDocument } from "./statusView.ts";

export interface ApiDeps {
  store: StateStore;
  status: () => StatusDocument;
  /** Stops the fleet and the controller; resolves when everything is stopped. */
  shutdown: () => Promise<void>;
  traffic?: TrafficApi;
  releases?: ReleasesApi;
  failover?: FailoverApi;
}

/** Zone failover: planning (shared fate, static stability, plans) and execution. */
export interface FailoverApi {
  check(): unknown;
  plan(domain: string): unknown;
  /** Zones, their health and shares, and survivor protection now. */
  state(): unknown;
  /** Evacuate a zone (safety rules apply; `override` needs a reason). */
  failover(domain: string, request: { reason: string; override: boolean }): unknown;
  /** Bring a zone's traffic back, through the failback hysteresis. */
  failback(domain: string, request: { reason: string }): unknown;
}

const failoverBody = z
  .object({ domain: z.string().min(1), reason: z.string().default(""), override: z.boolean().default(false) })
  .strict();
const failbackBody = z.object({ domain: z.string().min(1), reason: z.string().default("") }).strict();

/** Releases, deploys and rollbacks as the API exposes them. */
export interface ReleasesApi {
  deploy(service: string, version: string): unknown;
  planRollback(service: string, to?: string): unknown;
  rollback(service: string, options: { to?: string; force?: boolean; reason?: string }): unknown;
  releases(service: string): unknown;
}

const deployBody = z.object({ version: z.string().min(1) }).strict();
const rollbackBody = z
  .object({ to: z.string().min(1).optional(), force: z.boolean().optional(), reason: z.string().optional() })
  .strict();

const weightsBody = z
  .object({ weights: z.record(z.string(), z.number().finite().min(0)).nullable() })
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
  })
  .strict();

const eventsQuery = z
  .object({
    after: z.coerce.number().int().min(0).optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(200),
    service: z.string().optional(),
  })
  .strict();

const incidentsQuery = z
  .object({
    status: z.enum(["open", "closed"]).optional(),
    service: z.string().optional(),
    limit: z.coerce.number().int().min(1).max(10_000).default(100),
  })
  .strict();

const journalQuery = z
  .object({
    limit: z.coerce.number().int().min(1).max(10_000).default(100),
    pending: z.enum(["true", "false"]).optional(),
  })
  .strict();

function parseQuery<T>(schema: z.ZodType<T>, query: unknown): T {
  const parsed = schema.safeParse(query);
  if (!parsed.success) {
    const message = parsed.error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; ");
    throw new HomeostatError("HS_BAD_REQUEST", message);
  }
  return parsed.data;
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({ logger: false });
  // Before any route (and the not-found handler) so that every request passes them.
  installRequestGuards(app);

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof HomeostatError) {
      void reply.status(httpStatusFor(error)).send({
        error: {
          code: error.code,
          message: error.message,
          ...(error.details === undefined ? {} : { details: error.details }),
        },
      });
      return;
    }
    const status =
      typeof (error as { statusCode?: unknown }).statusCode === "number"
        ? (error as { statusCode: number }).statusCode
        : 500;
    const message = error instanceof Error ? error.message : String(error);
    void reply
      .status(status)
      .send({ error: { code: status < 500 ? "HS_BAD_REQUEST" : "HS_INTERNAL", message } });
  });
  app.setNotFoundHandler((request, reply) => {
    void reply
      .status(404)
      .send({ error: { code: "HS_NOT_FOUND", message: `no route ${request.method} ${request.url}` } });
  });

  app.get("/healthz", async () => ({ ok: true }));

  app.get("/v1/status", async () => deps.status());

  app.get("/v1/events", async (request): Promise<{ events: EventRecord[] }> => {
    const q = parseQuery(eventsQuery, request.query);
    return { events: deps.store.listEvents({ afterSeq: q.after, limit: q.limit, service: q.service }) };
  });

  app.get("/v1/incidents", async (request): Promise<{ incidents: IncidentRecord[] }> => {
    const q = parseQuery(incidentsQuery, request.query);
    return { incidents: deps.store.listIncidents({ status: q.status, service: q.service, limit: q.limit }) };
  });

  app.get("/v1/incidents/:id", async (request) => {
    const { id } = parseQuery(z.object({ id: z.coerce.number().int().min(1) }).strict(), request.params);
    const incident = deps.store.getIncident(id);
    if (incident === null) throw new HomeostatError("HS_NOT_FOUND", `no incident ${id}`);
    return { incident };
  });

  app.get("/v1/journal", async (request): Promise<{ journal: JournalRecord[] }> => {
    const q = parseQuery(journalQuery, request.query);
    return { journal: deps.store.listJournal({ limit: q.limit, pendingOnly: q.pending === "true" }) };
  });

  const traffic = (): TrafficApi => {
    if (deps.traffic === undefined) {
      throw new HomeostatError("HS_NOT_FOUND", "no service of this fleet has a traffic listener (`port`)");
    }
    return deps.traffic;
  };

  app.get("/metrics", async (_request, reply) => {
    const { contentType, text } = deps.traffic
      ? await deps.traffic.metrics()
      : { contentType: "text/plain", text: "" };
    return reply.type(contentType).send(text);
  });

  app.get("/v1/traffic", async () => ({ services: deps.traffic?.state() ?? {} }));

  app.put("/v1/services/:service/weights", async (request) => {
    const { service } = parseQuery(z.object({ service: z.string() }).strict(), request.params);
    const { weights } = parseQuery(weightsBody, request.body);
    traffic().setWeights(service, weights);
    return { service, weights, applied: await traffic().settled() };
  });

  app.get("/v1/dataplane", async () => ({ dataPlane: traffic().dataPlane() }));

  app.post("/v1/dataplane/restart", async (request, reply) => {
    const body = parseQuery(z.object({ reason: z.string().default("") }).strict(), request.body ?? {});
    const result = await traffic().restartDataPlane(body.reason);
    return reply.status(200).send(result);
  });

  app.get("/v1/faults", async () => ({ faults: deps.traffic?.listFaults() ?? [] }));

  app.post("/v1/faults", async (request, reply) => {
    const input = parseQuery(faultBody, request.body) as FaultRuleInput;
    const rule = traffic().addFault(input);
    return reply.status(201).send({ fault: rule, applied: await traffic().settled() });
  });

  app.delete("/v1/faults/:id", async (request) => {
    const { id } = parseQuery(z.object({ id: z.string() }).strict(), request.params);
    if (!traffic().removeFault(id)) throw new HomeostatError("HS_NOT_FOUND", `no fault ${id}`);
    return { removed: id, applied: await traffic().settled() };
  });

  app.delete("/v1/faults", async () => {
    const removed = traffic().clearFaults();
    return { removed, applied: await traffic().settled() };
  });

  const releases = (): ReleasesApi => {
    if (deps.releases === undefined)
      throw new HomeostatError("HS_NOT_FOUND", "release management is not available");
    return deps.releases;
  };
  const serviceParam = (params: unknown) =>
    parseQuery(z.object({ service: z.string() }).strict(), params).service;

  app.get("/v1/services/:service/releases", async (request) =>
    releases().releases(serviceParam(request.params)),
  );

  app.post("/v1/services/:service/deploy", async (request, reply) => {
    const { version } = parseQuery(deployBody, request.body);
    const rollout = releases().deploy(serviceParam(request.params), version);
    return reply.status(202).send({ rollout });
  });

  app.get("/v1/services/:service/rollback-plan", async (request) => {
    const { to } = parseQuery(z.object({ to: z.string().min(1).optional() }).strict(), request.query);
    return releases().planRollback(serviceParam(request.params), to);
  });

  app.post("/v1/services/:service/rollback", async (request, reply) => {
    const body = parseQuery(rollbackBody, request.body ?? {});
    const result = releases().rollback(serviceParam(request.params), {
      ...(body.to === undefined ? {} : { to: body.to }),
      ...(body.force === undefined ? {} : { force: body.force }),
      ...(body.reason === undefined ? {} : { reason: body.reason }),
    });
    return reply.status(202).send(result);
  });

  const failover = (): FailoverApi => {
    if (deps.failover === undefined)
      throw new HomeostatError("HS_NOT_FOUND", "failover planning is not available");
    return deps.failover;
  };

  app.get("/v1/check", async () => failover().check());

  app.get("/v1/failover-plan", async (request) => {
    const { domain } = parseQuery(z.object({ domain: z.string().min(1) }).strict(), request.query);
    return failover().plan(domain);
  });

  app.get("/v1/failover", async () => failover().state());

  app.post("/v1/failover", async (request, reply) => {
    const body = parseQuery(failoverBody, request.body ?? {});
    const shift = failover().failover(body.domain, { reason: body.reason, override: body.override });
    return reply.status(202).send({ shift, failover: failover().state() });
  });

  app.post("/v1/failback", async (request, reply) => {
    const body = parseQuery(failbackBody, request.body ?? {});
    const shift = failover().failback(body.domain, { reason: body.reason });
    return reply.status(202).send({ shift, failover: failover().state() });
  });

  app.post("/v1/shutdown", async (_request, reply) => {
    // Answer first: the caller (`homeostat down`) waits for the controller to go away on its own.
    void reply.status(202).send({ ok: true, message: "stopping every instance, then the controller" });
    setImmediate(() => void deps.shutdown());
    return reply;
  });

  return app;
}
