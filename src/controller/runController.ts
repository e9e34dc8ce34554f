/**
 * Bring a controller up for a fleet: state store, ownership lock, API listener, driver and loop,
 * in an order that starts no instance unless everything before it succeeded.
 */

import { mkdirSync } from "node:fs";
import { isIPv4 } from "node:net";
import { hostname } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { pino } from "pino";
import { findSharedFate, zonesSharingFate } from "../decide/failover/independence.ts";
import { planFailover } from "../decide/failover/planFailover.ts";
import { requiredCapacityFactor, staticStability } from "../decide/failover/staticStability.ts";
import { type ReasonCode, reason } from "../decide/reasons.ts";
import { LocalProcessDriver } from "../drivers/local/localProcessDriver.ts";
import { HomeostatError } from "../errors.ts";
import { Notifier } from "../notify/notifier.ts";
import { buildApi, type TrafficApi } from "../server/api.ts";
import { type AdminTokenFile, ensureAdminToken } from "../server/auth/bootstrap.ts";
import { buildStatus, type StatusDocument } from "../server/statusView.ts";
import { type FleetSpec, instanceName } from "../spec/model.ts";
import { RedisStores } from "../stateful/redis/storeManager.ts";
import { checkFleetOwnership, ownerOf } from "../store/fleetOwnership.ts";
import { type Claimant, type EventRecord, type Lease, STOPPED_HOLDER, StateStore } from "../store/index.ts";
import type { DataPlaneControl } from "../traffic/dataPlaneControl.ts";
import type { FaultRuleInput } from "../traffic/faults.ts";
import { ApplyManager, startingFleet } from "./applyManager.ts";
import { AutomationBrakes } from "./brakes.ts";
import { brakesApi } from "./brakesApi.ts";
import { capacityPicture } from "./capacityPicture.ts";
import { Controller } from "./controller.ts";
import { ControllerMetrics } from "./controllerMetrics.ts";
import { DataPlaneClient } from "./dataPlaneClient.ts";
import { FailoverManager } from "./failoverManager.ts";
import { fencedDriver } from "./fencedDriver.ts";
import { FleetHolder } from "./fleetHolder.ts";
import { InvariantMonitor } from "./invariantMonitor.ts";
import { DEFAULT_LEASE, LeaderElection, type LeaseSettings } from "./leaderElection.ts";
import { hashOf, ReleaseManager } from "./releaseManager.ts";
import { recordUpRevision, SpecDriftCheck } from "./specHistory.ts";
import { type FollowerApi, listenAsFollower } from "./standby.ts";

export interface RunOptions {
  fleet: FleetSpec;
  stateDir: string;
  apiPort: number;
  onEvent?: (event: EventRecord) => void;
  /** Called once the API listens, before any instance is adopted or started. */
  onListening?: (api: { url: string; adminToken: AdminTokenFile }) => void;
  /**
   * Called once the controller has shut down on request (API `POST /v1/shutdown`); `keepFleet`
   * when it stopped alone, leaving the instances and the data plane running.
   */
  onShutdownRequested?: (how: { keepFleet: boolean }) => void;
  /**
   * Where the service listeners run: `process` (default), a data-plane process of its own that
   * outlives the controller; `in-process`, inside the controller (its crash takes traffic down:
   * kept for comparison and for tests of the proxy alone).
   */
  dataPlaneMode?: "process" | "in-process";
  /** Data-plane worker processes sharing every service port (SO_REUSEPORT). Default 1. */
  dataPlaneWorkers?: number;
  /** The API's listening address: 127.0.0.1 by default (any but loopback needs `tls`: refused without). */
  bind?: string;
  /** Serve the API over HTTPS with this certificate and key (PEM). */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * A PostgreSQL store (`postgres://…`) shared by several controllers, of which one leads (the
   * others wait, forwarding their API to it): docs/operations.md#several-controllers. Absent: the
   * state directory's SQLite file, one controller.
   */
  store?: string;
  /** The leader lease on a PostgreSQL store (default {@link DEFAULT_LEASE}). */
  lease?: LeaseSettings;
  /** While following: told who leads at every claim (null and the error when the store failed). */
  onFollowing?: (lease: Lease | null, error?: unknown) => void;
  /** This controller was leading and no longer is: it has detached (the fleet runs on) and must exit. */
  onLeadershipLost?: (why: string) => void;
}

export interface RunningController {
  controller: Controller;
  store: StateStore;
  api: FastifyInstance;
  status(): StatusDocument;
  /** Security-invariant verdicts per service (what the verification gate reads). */
  invariants: InvariantMonitor;
  /** `<stateDir>/admin-token` and what `up` did about it (see ensureAdminToken). */
  adminToken: AdminTokenFile;
  /** Where the API answers: `http(s)://ADDRESS:PORT`. */
  apiUrl: string;
  /** Stop every instance, the API and the store. Idempotent. */
  shutdown(): Promise<void>;
  /**
   * Stop the controller alone: the API and the store close, instances and the data-plane process
   * keep running for the next controller to adopt (`homeostat down --keep-fleet`, SIGQUIT). An
   * in-process data plane stops with the controller. Idempotent; after it, `shutdown` does nothing.
   */
  detach(): Promise<void>;
}

/** An address only this machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped), localhost. */
function isLoopbackAddress(address: string): boolean {
  const v4 = address.toLowerCase().replace(/^::ffff:/, "");
  return v4 === "localhost" || address === "::1" || (isIPv4(v4) && v4.startsWith("127."));
}

export async function runController(options: RunOptions): Promise<RunningController> {
  // Checked here too, not only by `up`: whoever runs the controller, a token must not cross the
  // network in clear. Before anything starts: no state, no lock, no listener.
  const requestedBind = options.bind ?? "127.0.0.1";
  if (options.tls === undefined && !isLoopbackAddress(requestedBind)) {
    throw new HomeostatError(
      "HS_USAGE",
      `--bind ${requestedBind} would expose the API beyond this machine over plain HTTP (tokens in clear): give --tls-cert FILE and --tls-key FILE, or bind to 127.0.0.1. Nothing was started`,
    );
  }
  const store = StateStore.open(options.stateDir, options.store);
  const startedAt = Date.now();
  const bindAddress = options.bind ?? "127.0.0.1";
  const selfUrl = `${options.tls === undefined ? "http" : "https"}://${bindAddress.includes(":") ? `[${bindAddress}]` : bindAddress}:${options.apiPort}`;
  const me: Claimant = {
    holder: `${hostname()}/${process.pid}/${startedAt}`,
    pid: process.pid,
    host: hostname(),
    apiUrl: selfUrl,
    startedAt,
  };
  // Leadership: on SQLite the pid lock makes this the store's only controller; on PostgreSQL the
  // lease decides, and this controller follows (starting nothing) until it is its turn.
  let election: LeaderElection | null = null;
  let onLost: (why: string) => void = () => {};
  let lease: Lease;
  try {
    if (store.dialect === "sqlite") {
      store.acquireControllerLock({ pid: process.pid, apiPort: options.apiPort, startedAt });
      lease = store.leadership.claim(me, 0, true).lease;
    } else {
      const settings = options.lease ?? DEFAULT_LEASE;
      election = new LeaderElection({ leases: store.leadership, me, settings, onLost: (why) => onLost(why) });
      lease = await followUntilLeading(store, election, options, me);
      election.start();
      store.recordControllerOwner({ pid: process.pid, apiPort: options.apiPort, startedAt });
    }
    // Every journal entry, process action and data-plane snapshot carries this token from now on.
    store.fenceJournal(lease.token);
    // One state directory per fleet: another fleet file's state is never adopted nor mixed in.
    checkFleetOwnership(ownerOf(store.lastFleet()), options.fleet, options.stateDir);
  } catch (error) {
    election?.stop(true);
    store.releaseControllerLock(process.pid);
    store.close();
    throw error;
  }
  const token = lease.token;
  // The controller's own Prometheus series; they follow the store from here on.
  const metrics = new ControllerMetrics(store);
  const logDir = join(options.stateDir, "logs");
  mkdirSync(logDir, { recursive: true });
  // Structured log of everything the controller does, for machines (the console gets text).
  // Synchronous writes: a SIGKILLed controller must not lose the lines before its death.
  const logger = pino(
    { base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime },
    pino.destination({ dest: join(options.stateDir, "controller.log"), sync: true, mkdir: true }),
  );
  logger.info(
    { fleet: options.fleet.name, file: options.fleet.file, apiPort: options.apiPort },
    "controller starting",
  );
  // Starting or stopping a process cannot be undone: both this controller's clock and the store
  // must say it still leads with its token (src/controller/fencedDriver.ts).
  const fence = (what: string): void => {
    try {
      election?.assertLeading(what);
      store.leadership.assertCurrent(token, what);
    } catch (error) {
      try {
        store.appendEvent({
          at: Date.now(),
          type: "driver.fenced",
          reason: "fenced",
          message: `${error instanceof Error ? error.message : String(error)}: the process was not touched`,
          data: { token, what },
        });
      } catch {
        // The store may be what is gone; the refusal stands all the same.
      }
      throw error;
    }
  };
  const driver = fencedDriver(new LocalProcessDriver({ logDir }), fence);
  // The applied spec, read by every component when it needs it: `homeostat apply` replaces it.
  // A revision the last controller was still applying wins over the file (it is resumed below);
  // a release definition edited in the file under its recorded name keeps its recorded definition
  // (drift, reported) until it is applied.
  const starting = startingFleet(store, options.fleet);
  // Spec history: revision 1 is the file this state directory is first brought up with; a file
  // changed since the applied revision is recorded as `up` brings it up (see recordUpRevision).
  recordUpRevision(store, options.fleet, startedAt, starting.edited.length);
  const fleet = new FleetHolder(starting.fleet);
  // Stores' endpoints are served by the data plane too (issue 16, docs/redis.md).
  const hasTraffic =
    options.fleet.services.some((s) => s.port !== undefined) || (options.fleet.stores?.length ?? 0) > 0;
  // Data-plane events go through the controller once it exists, so they are stored and shown.
  let noteEvent: (type: string, code: ReasonCode, message: string, data: Record<string, unknown>) => void =
    () => {};
  const mode = options.dataPlaneMode ?? "process";
  const client =
    hasTraffic && mode === "process"
      ? new DataPlaneClient({
          fleet: fleet.current(),
          stateDir: options.stateDir,
          store,
          workers: options.dataPlaneWorkers ?? 1,
          fence,
          onEvent: (e) =>
            noteEvent(e.type, e.reason as ReasonCode, e.message, {
              ...(e.service ? { service: e.service } : {}),
              ...(e.data ?? {}),
            }),
        })
      : undefined;
  // The proxy is loaded only when it runs in this process: a controller that feeds a data-plane
  // process does not carry its code.
  const embedded =
    hasTraffic && mode === "in-process"
      ? new (await import("../traffic/dataPlane.ts")).DataPlane(options.fleet, (e) =>
          noteEvent(e.type, e.reason as ReasonCode, e.message, { service: e.service, ...(e.data ?? {}) }),
        )
      : undefined;
  const dataPlane: DataPlaneControl | undefined = client ?? embedded;
  // Automation brakes (docs/brakes.md): asked before every automated restart, rollback and failover.
  const brakes = new AutomationBrakes({
    store: store.brakes,
    fleet: () => fleet.current(),
    note: (type, why, data) => controller.note(type, why, data),
    escalate: (proposal, hold) => controller.escalateHeld(proposal, hold),
    poke: () => controller.poke(),
    instances: () => controller.observed().instances,
  });
  const releases = new ReleaseManager({
    fleet: fleet.current(),
    store,
    dataPlane,
    brakes,
    note: (type, why, data) => controller.note(type, why, data),
    spareBankHeld: (service) => failover.spareBankHeld(service),
    // A rollback is a recovery: the controller opens its incident and verifies it through the gate.
    onRollback: (progress) => controller.onRollback(progress),
  });
  const failover = new FailoverManager({
    fleet: fleet.current(),
    store,
    brakes,
    ...(dataPlane ? { dataPlane } : {}),
    note: (type, why, data) => controller.note(type, why, data),
  });
  const controller: Controller = new Controller({
    fleet: fleet.current(),
    store,
    brakes,
    driver,
    releases,
    failover,
    ...(dataPlane ? { dataPlane } : {}),
    // The invariant monitor is made below (it reads the controller's instances): asked lazily.
    invariants: { forService: (service) => invariants.forService(service) },
    metrics,
    events: {
      onEvent: (e) => {
        logger.info({ event: e }, `${e.type} ${e.instance ?? e.service ?? ""} [${e.reason}] ${e.message}`);
        options.onEvent?.(e);
      },
    },
  });

  noteEvent = (type, code, message, data) => controller.note(type, reason(code, message), data);
  // Replicated stores (issue 16): their own loop, members, failover and endpoints (docs/redis.md).
  const redisStores =
    (fleet.current().stores?.length ?? 0) > 0
      ? new RedisStores({
          stores: fleet.current().stores ?? [],
          store,
          stateDir: options.stateDir,
          fence,
          // The pause holds stores' automated failovers and member restarts too (docs/brakes.md).
          paused: () => brakes.paused(),
          endpoints:
            dataPlane?.setStores === undefined
              ? undefined
              : {
                  setStores: (stores) => dataPlane.setStores?.(stores),
                  settled: (timeoutMs) => dataPlane.settled(timeoutMs),
                },
          onEvent: (e) => {
            logger.info(
              { event: e },
              `${e.type} ${e.instance ?? e.service ?? ""} [${e.reason}] ${e.message}`,
            );
            options.onEvent?.(e);
          },
        })
      : undefined;
  // Webhooks: told from the store's events, delivered off the loop (src/notify/notifier.ts).
  const notifier = new Notifier({
    fleet: options.fleet.name,
    notifications: options.fleet.notifications ?? { webhooks: [] },
    store,
    note: (type, why, data) => controller.note(type, why, data),
    count: (webhook, outcome) => metrics.delivery(webhook, outcome),
  });
  // Probes every ready instance's declared security invariants; its verdicts gate `verified`.
  const invariants = new InvariantMonitor({
    fleet: fleet.current(),
    store,
    instances: () => controller.observed().instances,
    note: (type, why, data) => controller.note(type, why, data),
  });
  // Every component takes a newly applied spec at once, the controller last (its next pass
  // reconciles towards it with the others already in step).
  fleet.subscribe((next) => {
    releases.setFleet(next);
    failover.setFleet(next);
    client?.setFleet(next);
    invariants.setFleet(next);
    notifier.setNotifications(next.notifications ?? { webhooks: [] });
    controller.setFleet(next);
  });
  const applier = new ApplyManager({
    holder: fleet,
    store,
    controller,
    releases,
    failover,
    hasDataPlane: dataPlane !== undefined,
    ...(client ? { retireListener: (service: string) => client.retire(service) } : {}),
  });
  const traffic = dataPlane ? trafficApi(fleet, dataPlane, store, controller, client) : undefined;
  const specDrift = new SpecDriftCheck(store);
  let shuttingDown: Promise<void> | null = null;
  const status = (): StatusDocument => {
    const view = controller.view();
    const pids = new Map(store.listInstances().map((r) => [r.name, r.pid]));
    const document = buildStatus({
      fleet: fleet.current(),
      capacity: capacityPicture(fleet.current(), view.instances, new Set(view.busy), dataPlane?.stats),
      targets: releases.targets(),
      activeRelease: (service) => releases.activeRelease(service),
      instances: view.instances,
      pids,
      slots: view.slots,
      busy: view.busy,
      openIncidents: store.listIncidents({ status: "open" }),
      recovery: controller.recoveryInputs(),
      controller: {
        pid: process.pid,
        startedAt,
        apiPort: options.apiPort,
        stateDir: options.stateDir,
        now: Date.now(),
      },
    });
    // The security-invariant verdict of each service that declares some, as the gate reads it.
    Object.assign(document, { invariants: invariants.verdicts() });
    // The applied revision, and whether the file on disk still matches it (drift).
    Object.assign(document, { spec: specDrift.status() });
    // Replicated stores: topology, lag, epoch (docs/redis.md); the dashboard reads them from here.
    if (redisStores !== undefined) Object.assign(document, { stores: redisStores.status() });
    // Automation brakes: paused or not, how close each limit is, what is held now.
    Object.assign(document, { brakes: brakes.status() });
    // Release definitions edited in the file under a recorded name: drift, until applied.
    for (const edited of starting.edited) {
      const held = fleet.current().services.find((s) => s.name === edited.service)?.releases[edited.version];
      if (held === undefined || hashOf(held) !== edited.recordedHash) continue;
      document.partial.push({
        kind: "release-edited",
        service: edited.service,
        detail: `${edited.service} ${edited.version}: the fleet file edits this release's definition in place; instances keep running (and starting) the recorded one until \`homeostat apply --allow-in-place\` or a new version`,
      });
    }
    Object.assign(document, {
      leadership: {
        role: "leader",
        store: store.dialect,
        location: store.path,
        token,
        holder: me.holder,
        expiresAt: election === null ? null : (election.lease?.expiresAt ?? null),
        ttlMs: election === null ? null : (options.lease ?? DEFAULT_LEASE).ttlMs,
      },
    });
    return dataPlane ? { ...document, dataPlane: dataPlane.status() } : document;
  };
  const shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      // Instances are about to stop on purpose: no invariant round should read that as news.
      await invariants.stop();
      applier.stop();
      await controller.shutdown();
      // Still leading (and renewing) until everything is stopped: the stops are fenced like starts.
      await redisStores?.stop();
      await dataPlane?.close();
      // The fleet is stopped on purpose: waiting followers must not start it again.
      election?.stop(false);
      if (election !== null) store.leadership.markStopped(token);
      await api.close();
      notifier.stop();
      metrics.close();
      logger.info("controller stopped");
      store.releaseControllerLock(process.pid);
      store.close();
      stopWatchingUncaught();
    })();
    return shuttingDown;
  };
  const detach = (): Promise<void> => {
    shuttingDown ??= (async () => {
      // A follower takes over at once (its claim sees the lease given up), not a lease TTL later.
      election?.stop(true);
      await invariants.stop();
      redisStores?.detach();
      await controller.detach();
      // A data-plane process keeps serving its last snapshot; one inside this process cannot.
      if (client) await client.detach();
      else await embedded?.close();
      await api.close();
      notifier.stop();
      metrics.close();
      logger.info("controller stopped; instances and the data plane keep running");
      store.releaseControllerLock(process.pid);
      store.close();
      stopWatchingUncaught();
    })();
    return shuttingDown;
  };
  const adminToken = ensureAdminToken(store.tokens, options.stateDir, startedAt);
  // The file's path only: the token itself never goes to a log.
  logger.info({ file: adminToken.file, state: adminToken.state }, "admin token");
  const bind = options.bind ?? "127.0.0.1";
  const apiUrl = `${options.tls === undefined ? "http" : "https"}://${bind.includes(":") ? `[${bind}]` : bind}:${options.apiPort}`;
  const api = buildApi({
    store,
    status,
    auth: { store },
    controllerMetrics: metrics,
    ...(options.tls === undefined ? {} : { tls: options.tls }),
    failover: {
      check: () => {
        const seen = controller.observed();
        const picture = capacityPicture(fleet.current(), seen.instances, seen.busy, dataPlane?.stats);
        return {
          findings: findSharedFate(fleet.current()),
          headroom: staticStability(picture.services, picture.zones),
          requiredCapacityFactor: requiredCapacityFactor(picture.zones.length),
          skipped: picture.skipped,
        };
      },
      plan: (domain) => {
        const seen = controller.observed();
        const picture = capacityPicture(fleet.current(), seen.instances, seen.busy, dataPlane?.stats);
        if (!picture.zones.includes(domain)) {
          throw new HomeostatError(
            "HS_NOT_FOUND",
            `no zone ${domain} in this fleet (zones: ${picture.zones.join(", ")})`,
          );
        }
        return {
          ...planFailover({
            domain,
            services: picture.services,
            stepPercent: fleet.current().failover.stepPercent,
            sharesFateWith: zonesSharingFate(fleet.current(), domain),
          }),
          skipped: picture.skipped,
        };
      },
      state: () => failover.status(),
      failover: (domain, request) =>
        auditedBy(
          store,
          "failover",
          domain,
          `${request.override ? "override " : ""}failover of ${domain}: ${request.reason || "no reason given"}`,
          request,
          () => failover.failover(domain, request),
        ),
      failback: (domain, request) =>
        auditedBy(
          store,
          "failback",
          domain,
          `failback of ${domain}: ${request.reason || "no reason given"}`,
          request,
          () => failover.failback(domain, request),
        ),
    },
    releases: {
      deploy: (service, version) => releases.deploy(service, version),
      planRollback: (service, to) => releases.planRollback(service, to),
      rollback: (service, o) => releases.rollback(service, o),
      releases: (service) => releases.releases(service),
    },
    apply: { apply: (request, who) => applier.apply(request, who), progress: () => applier.progress() },
    brakes: brakesApi(brakes, controller),
    ...(traffic ? { traffic } : {}),
    ...(redisStores === undefined
      ? {}
      : {
          stores: {
            list: () => redisStores.status(),
            switchover: (name: string, request: { to?: string; reason?: string }) =>
              auditedBy(
                store,
                "switchover",
                name,
                `switchover of ${name}${request.to ? ` to ${request.to}` : ""}: ${request.reason || "no reason given"}`,
                request,
                () => redisStores.switchover(name, request),
              ),
          },
        }),
    shutdown: async (request) => {
      const keepFleet = request?.keepFleet === true;
      await (keepFleet ? detach() : shutdown());
      options.onShutdownRequested?.({ keepFleet });
    },
  });
  try {
    await api.listen({ host: bind, port: options.apiPort });
  } catch (error) {
    store.releaseControllerLock(process.pid);
    store.close();
    const code = (error as { code?: string }).code;
    if (code === "EADDRINUSE") {
      throw new HomeostatError(
        "HS_USAGE",
        `API port ${bind}:${options.apiPort} is already in use (another controller?). Stop it with \`homeostat down\`, or pick another port with --api-port.`,
      );
    }
    throw error;
  }
  if (dataPlane) {
    try {
      if (client) await client.start();
      else await embedded?.listen();
    } catch (error) {
      await api.close();
      store.releaseControllerLock(process.pid);
      store.close();
      throw error;
    }
  }
  // Deposed (the lease went to another, or could not be renewed in time): stop acting at once and
  // leave everything running for the new leader, which adopts it.
  onLost = (why) => {
    logger.warn({ why, token }, "leadership lost");
    try {
      controller.note(
        "leader.lost",
        reason("leader-lost", `this controller (fencing token ${token}) stopped leading: ${why}`),
        {
          token,
          holder: me.holder,
        },
      );
    } catch {
      // The store may be what failed: the log line above stays.
    }
    void detach().finally(() => options.onLeadershipLost?.(why));
  };
  if (election !== null && election.lostBecause !== null) onLost(election.lostBecause);
  // A deposed leader's orders fail with HS_FENCED wherever they were made (an exit handler, a
  // timer): that is leadership lost, not a crash. So is a store call that timed out while this
  // process was frozen past its lease. Anything else crashes as it would have.
  const onUncaught = (error: unknown): void => {
    const code = error instanceof HomeostatError ? error.code : null;
    let deposed = code === "HS_FENCED";
    if (!deposed && code === "HS_STORE_UNAVAILABLE" && election !== null) {
      try {
        election.assertLeading("go on after a store call that timed out");
      } catch {
        deposed = true;
      }
    }
    if (deposed) {
      onLost(error instanceof Error ? error.message : String(error));
      return;
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  };
  process.on("uncaughtException", onUncaught);
  const stopWatchingUncaught = (): void => {
    process.off("uncaughtException", onUncaught);
  };
  options.onListening?.({ url: apiUrl, adminToken });
  notifier.start();
  controller.note(
    "leader.elected",
    reason(
      "leader-elected",
      store.dialect === "sqlite"
        ? `this controller leads ${store.path} with fencing token ${token}`
        : `this controller leads the PostgreSQL store with fencing token ${token} (lease ${(options.lease ?? DEFAULT_LEASE).ttlMs} ms, renewed every ${(options.lease ?? DEFAULT_LEASE).renewEveryMs} ms)`,
    ),
    { token, holder: me.holder, store: store.dialect },
  );
  await controller.start();
  await redisStores?.start();
  invariants.start();
  for (const edited of starting.edited) {
    controller.note(
      "release.edited",
      reason(
        "release-edited",
        `${edited.service} ${edited.version}: the fleet file changes this release's definition under the same name (${edited.fields}); new instances keep the recorded definition until it is applied (\`homeostat apply --allow-in-place\`, or name a new version)`,
      ),
      { service: edited.service, version: edited.version },
    );
  }
  // One path for release changes: a `release:` the file moved while no controller ran goes
  // through the progressive deploy with analysis, like `homeostat deploy`.
  for (const pending of releases.pendingSwitches()) {
    try {
      releases.switchRelease(pending.service, pending.to);
    } catch (error) {
      controller.note(
        "release.switch-refused",
        reason(
          "release-changed",
          `${pending.service}: ${pending.to} not deployed: ${error instanceof Error ? error.message : String(error)}`,
        ),
        { service: pending.service },
      );
    }
  }
  applier.resume();
  return { controller, store, api, status, invariants, shutdown, detach, adminToken, apiUrl };
}

/** The API's view of the data plane: validated, journaled, and announced as events. */
function trafficApi(
  holder: FleetHolder,
  dataPlane: DataPlaneControl,
  store: StateStore,
  controller: Controller,
  client: DataPlaneClient | undefined,
): TrafficApi {
  const audited = <T>(action: string, target: string, message: string, data: unknown, run: () => T): T =>
    auditedBy(store, action, target, message, data, run);
  const serviceNamed = (name: string) => {
    const service = holder.current().services.find((s) => s.name === name);
    if (!service) throw new HomeostatError("HS_NOT_FOUND", `no service ${name}`);
    return service;
  };
  return {
    state: () => dataPlane.state(),
    metrics: () => dataPlane.metrics(),
    settled: () => dataPlane.settled(),
    dataPlane: () => dataPlane.status(),
    async restartDataPlane(reason) {
      if (client === undefined) {
        throw new HomeostatError(
          "HS_CONFLICT",
          "the data plane runs inside the controller (--data-plane in-process): it cannot be restarted alone",
        );
      }
      const result = await auditedBy(
        store,
        "restart-data-plane",
        "dataplane",
        `data-plane restart: ${reason || "no reason given"}`,
        { reason },
        () => client.restart(),
      );
      return { ...result, dataPlane: client.status() };
    },
    setWeights(name, weights) {
      const service = serviceNamed(name);
      if (service.port === undefined)
        throw new HomeostatError("HS_BAD_REQUEST", `service ${name} has no traffic listener`);
      if (weights !== null) {
        for (const version of Object.keys(weights)) {
          if (service.releases[version] === undefined) {
            throw new HomeostatError("HS_BAD_REQUEST", `service ${name} has no release ${version}`);
          }
        }
        if (!Object.values(weights).some((w) => w > 0)) {
          throw new HomeostatError("HS_BAD_REQUEST", "at least one weight must be positive");
        }
      }
      const message =
        weights === null
          ? `${name}: traffic split cleared`
          : `${name}: traffic split ${Object.entries(weights)
              .map(([v, w]) => `${v}=${w}`)
              .join(", ")}`;
      audited("set-weights", name, message, { weights }, () => dataPlane.setWeights(name, weights));
      controller.note("traffic.weights", reason("operator", message), { service: name, weights });
    },
    listFaults: () => dataPlane.faults.list(),
    addFault(input: FaultRuleInput) {
      if (input.service !== undefined) serviceNamed(input.service);
      // Both banks: a drill may target the canary of a deploy.
      const ownerOf = (instance: string) =>
        holder
          .current()
          .services.find((s) =>
            Array.from({ length: 2 * s.replicas }, (_, slot) => instanceName(s.name, slot)).includes(
              instance,
            ),
          );
      const owner = input.instance === undefined ? undefined : ownerOf(input.instance);
      if (input.instance !== undefined && owner === undefined) {
        throw new HomeostatError("HS_NOT_FOUND", `no instance ${input.instance}`);
      }
      if (
        input.zone !== undefined &&
        !holder.current().services.some((s) => s.placement.some((p) => p.zone === input.zone))
      ) {
        throw new HomeostatError("HS_NOT_FOUND", `no zone ${input.zone} in this fleet`);
      }
      const onHaproxy = [owner, input.service === undefined ? undefined : serviceNamed(input.service)].find(
        (s) => s?.traffic.engine === "haproxy",
      );
      if (onHaproxy !== undefined) {
        // The rules live in the embedded proxy's request path; HAProxy has none to run them.
        throw new HomeostatError(
          "HS_BAD_REQUEST",
          `${onHaproxy.name} uses the haproxy engine, which runs no injected faults: inject a real one (kill -9, kill -STOP, a network partition) or use engine: embedded`,
        );
      }
      const target =
        [input.service, input.instance, input.zone].filter(Boolean).join("/") || "every endpoint";
      const rule = audited("add-fault", target, `fault ${input.fault.kind} on ${target}`, input, () =>
        dataPlane.faults.add(input),
      );
      controller.note("fault.added", reason("operator", `${rule.id}: ${rule.fault.kind} on ${target}`), {
        fault: rule,
        ...(input.service ? { service: input.service } : {}),
        ...(input.instance ? { instance: input.instance } : {}),
      });
      return rule;
    },
    removeFault(id) {
      const removed = audited("remove-fault", id, `fault ${id} removed`, { id }, () =>
        dataPlane.faults.remove(id),
      );
      if (removed) controller.note("fault.removed", reason("operator", `${id} removed`), { fault: id });
      return removed;
    },
    clearFaults() {
      const count = dataPlane.faults.list().length;
      audited("clear-faults", "all", `${count} fault(s) cleared`, {}, () => dataPlane.faults.clear());
      if (count > 0) controller.note("fault.cleared", reason("operator", `${count} fault(s) cleared`));
      return count;
    },
  };
}

/** Run an operator's action with a journal entry before it and its result after it. */
function auditedBy<T>(
  store: StateStore,
  action: string,
  target: string,
  message: string,
  data: unknown,
  run: () => T,
): T {
  const id = store.journalIntent({ at: Date.now(), action, target, reason: `operator: ${message}`, data });
  const failed = (error: unknown): never => {
    store.journalResult(id, {
      at: Date.now(),
      ok: false,
      detail: error instanceof Error ? error.message : String(error),
    });
    throw error;
  };
  let value: T;
  try {
    value = run();
  } catch (error) {
    return failed(error);
  }
  // An action that runs on (a data-plane restart) is journaled when it has finished.
  if (value instanceof Promise) {
    return value.then((settled: unknown) => {
      store.journalResult(id, { at: Date.now(), ok: true, detail: message });
      return settled;
    }, failed) as T;
  }
  store.journalResult(id, { at: Date.now(), ok: true, detail: message });
  return value;
}

/**
 * Follows until this controller leads: its API port forwards to the leader meanwhile. Throws
 * HS_STATE_LOCKED-like HS_CONFLICT when the fleet was stopped (`down`) while it waited.
 */
async function followUntilLeading(
  store: StateStore,
  election: LeaderElection,
  options: RunOptions,
  me: Claimant,
): Promise<Lease> {
  let follower: FollowerApi | null = null;
  // The follower API's start, kept so that it is closed even when leadership comes before it listens.
  let listening: Promise<FollowerApi | null> | null = null;
  let known: Lease | null = null;
  let stopped: Lease | null = null;
  const aborter = new AbortController();
  try {
    const lease = await election.acquire((current, error) => {
      options.onFollowing?.(current, error);
      if (current !== null && current.holder === STOPPED_HOLDER) {
        stopped = current;
        aborter.abort(new Error("stopped"));
        return;
      }
      known = current;
      follower?.setLease(current);
      if (listening === null && current !== null) {
        // Listening only once there is a leader to forward to; errors (a port in use) end the start.
        listening = listenAsFollower({
          store,
          bind: options.bind ?? "127.0.0.1",
          port: options.apiPort,
          ...(options.tls === undefined ? {} : { tls: options.tls }),
          self: { holder: me.holder, apiUrl: me.apiUrl ?? "" },
        }).then(
          (api) => {
            follower = api;
            api.setLease(known);
            return api;
          },
          (error: unknown) => {
            aborter.abort(error);
            return null;
          },
        );
      }
    }, aborter.signal);
    return lease;
  } catch (error) {
    if (stopped !== null) {
      throw new HomeostatError(
        "HS_CONFLICT",
        `the fleet was stopped (\`homeostat down\`) by the leader while this controller waited to take over; it does not start it again. Run \`homeostat up\` to start the fleet`,
      );
    }
    throw error instanceof HomeostatError
      ? error
      : new HomeostatError("HS_USAGE", `API port ${options.apiPort}: ${(error as Error).message}`);
  } finally {
    // The leader's API binds the same port next: the follower's must be closed first.
    await (await (listening as Promise<FollowerApi | null> | null))?.close();
  }
}
