/**
 * The controller's local JSON API (Fastify), bound to 127.0.0.1. The CLI is a client of it; so
 * is the dashboard. Every route is declared with `route()` (./route.ts) in ./routes/, one file per
 * concern, with its role and the zod schemas of its input and answers; `GET /openapi.json` is the
 * document built from them. Every error answers with the one envelope
 * `{ error: { code, message, details? } }` (./errorEnvelope.ts) and a 4xx/5xx.
 * No ambient authority (see ./requestGuards.ts): `Host` must be the address it listens on, a
 * change needs a JSON body and no foreign `Origin`, and no CORS header is ever sent.
 */

import Fastify, { type FastifyInstance } from "fastify";
import type { ApplyAnswer, ApplyProgress, ApplyRequest } from "../controller/applyManager.ts";
import type { StoreStatus } from "../stateful/redis/storeManager.ts";
import type { StateStore } from "../store/index.ts";
import type { FaultRule, FaultRuleInput } from "../traffic/faults.ts";
import { type AuthDeps, installAuth } from "./auth/installAuth.ts";
import { registerDashboard } from "./dashboard.ts";
import {
  BODY_LIMIT_BYTES,
  clientErrorHandler,
  frameworkErrors,
  installErrorEnvelope,
  MAX_HEADER_BYTES,
  MAX_PARAM_LENGTH,
  urlLengthGuard,
} from "./errorEnvelope.ts";
import { openApiRoutes, trackFastifyRoutes } from "./openapi.ts";
import { installRequestGuards } from "./requestGuards.ts";
import { applyRoutes } from "./routes/applyRoutes.ts";
import { registerAuthRoutes } from "./routes/authRoutes.ts";
import { brakeRoutes } from "./routes/brakeRoutes.ts";
import { failoverRoutes } from "./routes/failoverRoutes.ts";
import { fleetRoutes } from "./routes/fleetRoutes.ts";
import { releaseRoutes } from "./routes/releaseRoutes.ts";
import { specRoutes } from "./routes/specRoutes.ts";
import { storeRoutes } from "./routes/storeRoutes.ts";
import { streamRoutes } from "./routes/streamRoutes.ts";
import { trafficRoutes } from "./routes/trafficRoutes.ts";
import type { StatusDocument } from "./statusView.ts";

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

export interface ApiDeps {
  store: StateStore;
  status: () => StatusDocument;
  /** Stops the fleet and the controller; resolves when everything is stopped. */
  /** Stop every instance, then the controller; with `keepFleet`, the controller alone (instances and data plane run on). */
  shutdown: (options?: { keepFleet?: boolean }) => Promise<void>;
  traffic?: TrafficApi;
  releases?: ReleasesApi;
  /** `homeostat apply`: a new fleet file while running (src/controller/applyManager.ts). */
  apply?: ApplyApi;
  failover?: FailoverApi;
  /** Automation brakes: pause, resume, their state; every person's action is checked against them. */
  brakes?: BrakesApi;
  /** Replicated stores (issue 16, docs/redis.md): status and planned switchover. */
  stores?: StoresApi;
  /** The controller's own metrics (served on /metrics before the data plane's; counts stream clients). */
  controllerMetrics?: {
    exposition(): Promise<{ contentType: string; text: string }>;
    streamClients(delta: 1 | -1): void;
  };
  /** Tokens and the audit trail (./auth/installAuth.ts): every non-public route needs a token. */
  auth: AuthDeps;
  /** Serve HTTPS with this certificate and key (PEM); plain HTTP when absent. */
  tls?: { cert: string | Buffer; key: string | Buffer };
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

/** Replicated stores: what `GET /v1/stores` shows, and planned switchover. */
export interface StoresApi {
  list(): StoreStatus[];
  /** Refused while automation is paused unless `override` (the route asks the brakes first). */
  switchover(store: string, request: { to?: string; reason?: string; override?: boolean }): Promise<unknown>;
}

/** Automation brakes as the API exposes them (src/controller/brakes.ts, docs/brakes.md). */
export interface BrakesApi {
  /** The pause, how close each limit is, what is held now. */
  status(): unknown;
  pause(by: string, reason: string): unknown;
  resume(by: string, reason: string): unknown;
  /** Throws HS_PAUSED while paused unless `override` (with a reason: HS_BAD_REQUEST without). */
  assertManual(action: { what: string; override: boolean; reason: string; who: string }): void;
  /** A person's restart of one instance (running: replaced; not running: started now). */
  restart(instance: string, reason: string, who: string): unknown;
}

/** Applying a fleet file to the running fleet, and its progress. */
export interface ApplyApi {
  apply(request: ApplyRequest, who: string): ApplyAnswer;
  progress(): ApplyProgress;
}

/** Releases, deploys and rollbacks as the API exposes them. */
export interface ReleasesApi {
  deploy(service: string, version: string): unknown;
  planRollback(service: string, to?: string): unknown;
  rollback(service: string, options: { to?: string; force?: boolean; reason?: string }): unknown;
  releases(service: string): unknown;
}

/**
 * The API with every route declared (not listening yet: the caller calls `listen`). Error
 * handling and the request guards are installed before any route so that every request,
 * unmatched ones included, passes them and is refused in the one envelope.
 */
export function buildApi(deps: ApiDeps): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: BODY_LIMIT_BYTES,
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    // Node's parser refuses an oversized request head (a long URL or large headers) before Fastify
    // sees it; this handler answers in the one envelope instead of Node's bare status line.
    // HTTPS when given a certificate (Fastify's types know one server kind per call: same API).
    ...(deps.tls === undefined
      ? { http: { maxHeaderSize: MAX_HEADER_BYTES } }
      : ({ https: { ...deps.tls, maxHeaderSize: MAX_HEADER_BYTES } } as unknown as {
          http: { maxHeaderSize: number };
        })),
    clientErrorHandler,
    frameworkErrors,
  });
  trackFastifyRoutes(app);
  installErrorEnvelope(app);
  // Before any route (and the not-found handler) so that every request passes them.
  app.addHook("onRequest", async (request) => urlLengthGuard(request));
  installRequestGuards(app);
  installAuth(app, deps.auth);

  fleetRoutes(app, deps);
  trafficRoutes(app, deps);
  releaseRoutes(app, deps);
  applyRoutes(app, deps);
  failoverRoutes(app, deps);
  brakeRoutes(app, deps);
  storeRoutes(app, deps);
  specRoutes(app, deps);
  streamRoutes(app, deps);
  registerAuthRoutes(app, deps.auth);
  registerDashboard(app);
  openApiRoutes(app);

  return app;
}
