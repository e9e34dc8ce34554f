/**
 * One service's traffic listener: HTTP/1.1 on 127.0.0.1:`port`, forwarding to the service's ready
 * instances through admission control, the balancer, retries under a budget, and per-endpoint
 * keep-alive pools. The request path is in `proxiedRequest.ts`; see docs/data-plane.md.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Server as NetServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { HomeostatError } from "../../errors.ts";
import { listeningFd } from "../../lib/sockets.ts";
import type { TrafficSpec } from "../../spec/model.ts";
import { Balancer } from "../balance/balancer.ts";
import type { AttemptOutcome, Endpoint, SheddingShares } from "../contracts.ts";
import type { FaultRegistry } from "../faults.ts";
import { AdmissionController } from "../policies/admissionController.ts";
import { RetryBudget } from "../policies/retryBudget.ts";
import {
  type AttemptRecord,
  blankAttemptRecord,
  type RequestRecord,
  type TrafficStats,
} from "../stats/index.ts";
import { Deadlines } from "./deadlineList.ts";
import type { EndpointPool } from "./endpointPool.ts";
import { EndpointTable } from "./endpointTable.ts";
import { checkedSheddingShares } from "./failoverShedding.ts";
import { answerClientError } from "./framing.ts";
import { HealthWatch, type TrafficEvent } from "./healthWatch.ts";
import { Hedging } from "./hedging.ts";
import { proxyRequest } from "./proxiedRequest.ts";
import type { ProxyRuntime } from "./proxyRuntime.ts";
import { StallWatch } from "./stallWatch.ts";
import { proxyUpgrade } from "./upgradeRequest.ts";

export type { TrafficEvent };

const netClose = NetServer.prototype.close;

export interface ServiceProxyOptions {
  service: string;
  /** Listens on 127.0.0.1 only. 0 picks a free port (see {@link ServiceProxy.port}). */
  port: number;
  traffic: TrafficSpec;
  stats: TrafficStats;
  faults: FaultRegistry;
  /** Epoch ms (ejection times); default `Date.now`. */
  now?: () => number;
  /** Uniform [0, 1); default `Math.random`. */
  random?: () => number;
  /** Ejections, returns, panic: things a person watching the fleet wants to know. */
  onEvent?: (event: TrafficEvent) => void;
  /**
   * A listening socket inherited from the data plane this one takes over from (planned restart):
   * connections keep queueing on it while both processes hold it, so none is refused.
   */
  listenFd?: number;
  /**
   * Bind with SO_REUSEPORT: several data-plane workers each hold a socket on the port and the
   * kernel spreads connections over them.
   */
  reusePort?: boolean;
}

/** One service's HTTP proxy. */
export class ServiceProxy implements ProxyRuntime {
  readonly service: string;
  readonly balancer: Balancer;
  readonly table: EndpointTable;
  readonly stats: TrafficStats;
  readonly faults: FaultRegistry;
  readonly now: () => number;
  readonly random: () => number;
  traffic: TrafficSpec;
  admission: AdmissionController;
  budget: RetryBudget;
  /** Request and per-try deadlines of this service's requests. */
  readonly deadlines = new Deadlines();
  /** The failover shedding gate's shares (null: no gate). See {@link setShedding}. */
  shedding: SheddingShares | null = null;
  readonly hedging: Hedging;
  private readonly requestedPort: number;
  private readonly listenFd: number | undefined;
  private readonly reusePort: boolean;
  private readonly server: Server;
  private readonly watch: HealthWatch;
  private readonly stallWatch: StallWatch;
  private endpoints: readonly Endpoint[] = [];
  private activeRequests = 0;
  private unrecognised = 0;
  private idle: (() => void) | null = null;
  private closing: Promise<void> | null = null;
  /** Reused for every attempt record: the stats read it synchronously. */
  private readonly attemptRecord: AttemptRecord = blankAttemptRecord();

  /** @throws HomeostatError HS_BAD_REQUEST when `traffic.weights` is not valid */
  constructor(options: ServiceProxyOptions) {
    this.service = options.service;
    this.requestedPort = options.port;
    this.listenFd = options.listenFd;
    this.reusePort = options.reusePort ?? false;
    this.traffic = options.traffic;
    this.stats = options.stats;
    this.faults = options.faults;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.balancer = new Balancer(options.traffic);
    this.table = new EndpointTable(() => this.admission?.limitChanged());
    this.admission = this.newAdmission(options.traffic);
    this.budget = newBudget(options.traffic);
    this.hedging = new Hedging(options.traffic);
    const onEvent = options.onEvent ?? (() => {});
    this.watch = new HealthWatch({
      service: this.service,
      balancer: this.balancer,
      stats: this.stats,
      now: this.now,
      onEvent,
    });
    this.stallWatch = new StallWatch({
      service: this.service,
      balancer: this.balancer,
      table: this.table,
      stats: this.stats,
      traffic: () => this.traffic,
      hedgeDelayMs: () => this.hedging.delayMs,
      now: this.now,
      onEvent,
    });
    this.server = createServer((req: IncomingMessage, res: ServerResponse) => proxyRequest(this, req, res));
    this.server.on("clientError", answerClientError);
    this.server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      void proxyUpgrade(this, req, socket as Socket, head);
    });
    // CONNECT asks for a forward proxy; this is a reverse proxy.
    this.server.on("connect", (_req: IncomingMessage, socket: Duplex) => {
      socket.on("error", () => {});
      socket.end("HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    });
  }

  /** The port listened on (the requested one, or the one picked for port 0). */
  get port(): number {
    const address = this.server.address();
    return typeof address === "object" && address !== null ? address.port : this.requestedPort;
  }

  /**
   * Listen on 127.0.0.1:`port`.
   * @throws HomeostatError HS_PORT_IN_USE when the port is taken
   */
  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        if (error.code === "EADDRINUSE") {
          reject(
            new HomeostatError(
              "HS_PORT_IN_USE",
              `service ${this.service}: port ${this.requestedPort} on 127.0.0.1 is already in use; free it or change the service's port`,
              { details: { service: this.service, port: this.requestedPort }, cause: error },
            ),
          );
        } else reject(error);
      };
      this.server.once("error", onError);
      const where =
        this.listenFd === undefined
          ? { host: "127.0.0.1", port: this.requestedPort, reusePort: this.reusePort }
          : { fd: this.listenFd };
      this.server.listen(where, () => {
        this.server.off("error", onError);
        // After listening, errors (e.g. EMFILE on accept) must not crash the controller.
        this.server.on("error", () => {});
        resolve();
      });
    });
  }

  /**
   * The service's ready instances. New ones take traffic at once; removed ones get no new
   * requests and finish theirs (up to `drainTimeoutMs`).
   * @throws HomeostatError HS_INTERNAL when two endpoints share an instance name
   */
  setEndpoints(endpoints: Endpoint[]): void {
    if (this.closing !== null) return; // everything is draining for good
    this.balancer.setEndpoints(endpoints);
    this.endpoints = endpoints.map((e) => ({ ...e }));
    this.table.update(this.endpoints, this.traffic);
    this.watch.poke();
    this.stallWatch.poke();
  }

  /**
   * Release weights (null: no split), replaced as a whole and at once.
   * @throws HomeostatError HS_BAD_REQUEST when a weight is negative or not finite, or none is > 0
   */
  setWeights(weights: Record<string, number> | null): void {
    this.balancer.setWeights(weights);
    this.traffic = { ...this.traffic, weights: weights === null ? null : { ...weights } };
  }

  /**
   * Zone shares for a failover or failback (see Balancer.setZoneShares), replaced as a whole.
   * @throws HomeostatError HS_BAD_REQUEST when a share is not in [0, 1]
   */
  setZoneShares(shares: Readonly<Record<string, number>> | null): void {
    this.balancer.setZoneShares(shares);
  }

  /** Instances the outlier detector has ejected now. */
  ejectedInstances(): string[] {
    return this.balancer.ejectedInstances(this.now());
  }

  /**
   * The failover shedding gate, from the next request on: each share is the probability that a
   * request of that criticality is refused (503 `failover-shed`, with `retry-after`) before
   * admission. `critical` is never refused by the gate. Null removes the gate.
   * @throws HomeostatError HS_BAD_REQUEST when a share is not a finite number in [0, 1]
   */
  setShedding(shares: Readonly<SheddingShares> | null): void {
    this.shedding = checkedSheddingShares(this.service, shares);
  }

  /**
   * New traffic settings, from the next request on. A changed retry budget starts a fresh
   * window; a changed queue starts a fresh admission controller (requests already admitted finish
   * under the old one); changed per-instance limits give each endpoint a fresh pool (the old one
   * drains).
   * @throws HomeostatError HS_BAD_REQUEST when `traffic.weights` is not valid
   */
  setTraffic(traffic: TrafficSpec): void {
    this.balancer.setTraffic(traffic);
    const before = this.traffic;
    this.traffic = traffic;
    if (!sameJson(before.retries.budget, traffic.retries.budget)) this.budget = newBudget(traffic);
    if (
      before.limits.queueSize !== traffic.limits.queueSize ||
      before.limits.queueTimeoutMs !== traffic.limits.queueTimeoutMs
    ) {
      this.admission = this.newAdmission(traffic);
    }
    this.hedging.configure(traffic);
    this.table.update(this.endpoints, traffic);
    this.watch.poke();
    this.stallWatch.poke();
  }

  /** Requests in flight to `instance`, including a drained copy of it and open tunnels. */
  inFlight(instance: string): number {
    return this.table.inFlightTotal(instance);
  }

  /** JSON for the API: endpoints, admission, limits, weights, panic, hedging, stalls. */
  state(): Record<string, unknown> {
    const balancer = this.balancer.state(this.now());
    const outlier = new Map(balancer.endpoints.map((e) => [e.instance, e]));
    return {
      service: this.service,
      port: this.port,
      endpoints: this.table.describe().map((row) => {
        // A draining copy of an instance that is also active again shares its name, not its record.
        const e = row.draining ? undefined : outlier.get(row.instance);
        return {
          ...row,
          priority: e?.priority ?? null,
          ejected: e?.ejected ?? false,
          ejectedUntil: e?.ejectedUntil ?? null,
          consecutiveFailures: e?.consecutiveFailures ?? 0,
          timesEjected: e?.timesEjected ?? 0,
          stalled: e?.stalled ?? false,
          stalledSince: e?.stalledSince ?? null,
        };
      }),
      healthy: balancer.healthy,
      members: balancer.members,
      panic: balancer.panic,
      panicMode: balancer.panicMode,
      weights: balancer.weights,
      // Zones shifted by a failover or failback and the share of their traffic they keep.
      zoneShares: balancer.zoneShares,
      shedding: this.shedding === null ? null : { ...this.shedding },
      pools: balancer.pools,
      ejectionsSuppressed: balancer.ejectionsSuppressed,
      stallsSuppressed: balancer.stallsSuppressed,
      admission: this.admission.stats(),
      limits: {
        capacity: this.table.capacity(),
        maxConcurrentPerInstance: this.traffic.limits.maxConcurrentPerInstance,
        adaptive: this.traffic.limits.adaptive,
        queueSize: this.traffic.limits.queueSize,
        queueTimeoutMs: this.traffic.limits.queueTimeoutMs,
      },
      retryBudget: this.budget.stats(),
      hedging: this.hedging.stats(),
      requestsInFlight: this.activeRequests,
      unrecognisedCriticality: this.unrecognised,
    };
  }

  /**
   * Stop accepting connections, let requests in flight finish (up to `drainTimeoutMs`), then cut
   * what is left and close every pool. Idempotent; resolves when everything is closed.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  /** The listening socket's descriptor, to hand to a successor process (null when not listening). */
  listeningFd(): number | null {
    return listeningFd(this.server);
  }

  /**
   * Hand the port over to a successor that holds the same listening socket: stop accepting here
   * (the socket stays open in the successor, so no queued connection is lost), answer every
   * request still arriving on open connections with `connection: close` so clients move to the
   * successor, wait until those connections are gone (up to `drainTimeoutMs`), then close.
   * Idle keep-alive connections are not cut at once (a request could be on its way): they end
   * after their response or at the server's keep-alive timeout. Idempotent with {@link close}.
   */
  handOff(): Promise<void> {
    this.closing ??= this.shutDownForSuccessor();
    return this.closing;
  }

  // --- ProxyRuntime: called by the request path ---

  reportAttempt(
    pool: EndpointPool,
    outcome: AttemptOutcome,
    status: number | undefined,
    latencyMs: number,
  ): void {
    const endpoint = pool.endpoint;
    this.balancer.report(endpoint.instance, outcome, this.now());
    const record = this.attemptRecord;
    record.service = this.service;
    record.release = endpoint.release;
    record.instance = endpoint.instance;
    record.zone = endpoint.zone;
    record.outcome = outcome;
    record.status = status;
    record.latencyMs = latencyMs;
    this.stats.recordAttempt(record);
    if (outcome === "success") this.hedging.recordLatency(latencyMs);
    else this.watch.poke();
  }

  slowAttempt(pool: EndpointPool): void {
    this.stallWatch.hedged(pool.endpoint.instance);
  }

  recordHedge(won: boolean): void {
    if (won) this.hedging.won++;
    else this.hedging.sent++;
    this.stats.recordHedge(this.service, won);
  }

  recordRequest(record: RequestRecord): void {
    this.stats.recordRequest(record);
  }

  requestStarted(): void {
    this.activeRequests++;
    this.stallWatch.poke();
  }

  requestEnded(): void {
    this.activeRequests--;
    if (this.activeRequests === 0) this.idle?.();
  }

  unrecognisedCriticality(): void {
    this.unrecognised++;
  }

  private async shutDownForSuccessor(): Promise<void> {
    const drainMs = this.traffic.drainTimeoutMs;
    this.server.on("request", (_req: IncomingMessage, res: ServerResponse) => {
      res.shouldKeepAlive = false;
    });
    // net.Server's close, not http.Server's: the latter also cuts idle keep-alive connections,
    // one of which may be carrying a request the client has just sent.
    const connectionsGone = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else netClose.call(this.server, () => resolve());
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainMs);
    });
    await Promise.race([connectionsGone, deadline]);
    clearTimeout(timer);
    const requestsDone = new Promise<void>((resolve) => {
      if (this.activeRequests === 0) resolve();
      else this.idle = resolve;
    });
    await Promise.race([requestsDone, new Promise<void>((resolve) => setTimeout(resolve, 100).unref())]);
    this.watch.stop();
    await this.table.cutAll();
    this.server.closeAllConnections();
    await connectionsGone;
    this.deadlines.clear();
  }

  private async shutDown(): Promise<void> {
    const drainMs = this.traffic.drainTimeoutMs;
    const listening = this.server.listening;
    const serverClosed = new Promise<void>((resolve) => {
      if (!listening) resolve();
      else this.server.close(() => resolve());
    });
    this.server.closeIdleConnections();
    const requestsDone = new Promise<void>((resolve) => {
      if (this.activeRequests === 0) resolve();
      else this.idle = resolve;
    });
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainMs);
    });
    const pools = this.table.drainAll(drainMs);
    await Promise.race([Promise.all([requestsDone, pools]), deadline]);
    clearTimeout(timer);
    this.watch.stop();
    await this.table.cutAll();
    this.server.closeAllConnections();
    await serverClosed;
    this.deadlines.clear();
  }

  private newAdmission(traffic: TrafficSpec): AdmissionController {
    return new AdmissionController({
      limit: () => this.table.capacity(),
      queueSize: traffic.limits.queueSize,
      queueTimeoutMs: traffic.limits.queueTimeoutMs,
    });
  }
}

function newBudget(traffic: TrafficSpec): RetryBudget {
  const { ratio, windowMs, minPerSecond } = traffic.retries.budget;
  return new RetryBudget({ ratio, windowMs, minPerSecond });
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
