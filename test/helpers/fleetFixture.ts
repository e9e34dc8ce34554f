/**
 * Builds resolved `FleetSpec` values directly (no YAML, no parsing) for tests of the pure core.
 * Every field has a sensible default so a test spells out only what it is about.
 */

import type {
  BackoffSpec,
  CapacitySpec,
  DatastoreSpec,
  DeploySpec,
  FailoverSpec,
  FleetSpec,
  ProbeSet,
  ReleaseSpec,
  RestartSpec,
  SecuritySpec,
  ServiceSpec,
  SloSpec,
  TrafficSpec,
  ZoneHost,
} from "../../src/spec/model.ts";

/** Restart defaults: backoff 200ms → 30s ×2 with 20% jitter; crash loop at 5 failures in 60s. */
export const DEFAULT_BACKOFF: BackoffSpec = { initialMs: 200, maxMs: 30_000, multiplier: 2, jitter: 0.2 };

export interface RestartOverrides {
  policy?: RestartSpec["policy"];
  backoff?: Partial<BackoffSpec>;
  crashLoop?: Partial<RestartSpec["crashLoop"]>;
  stopGracePeriodMs?: number;
  resetAfterMs?: number;
}

export function makeRestart(overrides: RestartOverrides = {}): RestartSpec {
  return {
    policy: overrides.policy ?? "always",
    backoff: { ...DEFAULT_BACKOFF, ...overrides.backoff },
    crashLoop: { failures: 5, windowMs: 60_000, ...overrides.crashLoop },
    stopGracePeriodMs: overrides.stopGracePeriodMs ?? 5_000,
    resetAfterMs: overrides.resetAfterMs ?? 10_000,
  };
}

/**
 * Traffic defaults as the loader resolves them for a service placed in zone "local": one priority,
 * factor 1.4, eject after 5 failures (5s → 5m, at most 50 %), panic below 50 % (send-to-all),
 * 3 attempts of 2s with 25ms → 250ms backoff and a 20 % budget over 10s (5/s minimum), 100
 * concurrent per instance (adaptive) with a queue of 100 for 1s, hedging after p95 × 1.5 within
 * 20ms..1s (one per request), stall detection after max(4 × hedge delay, 250ms), drain 10s,
 * request 30s, no weights.
 */
export const DEFAULT_TRAFFIC: TrafficSpec = {
  engine: "embedded",
  priorities: [["local"]],
  overprovisioningFactor: 1.4,
  outlier: { consecutiveFailures: 5, baseEjectionMs: 5_000, maxEjectionMs: 300_000, maxEjectionPercent: 50 },
  panic: { thresholdPercent: 50, mode: "send-to-all" },
  retries: {
    maxAttempts: 3,
    perTryTimeoutMs: 2_000,
    backoff: { initialMs: 25, maxMs: 250 },
    budget: { ratio: 0.2, windowMs: 10_000, minPerSecond: 5 },
  },
  limits: { maxConcurrentPerInstance: 100, adaptive: true, queueSize: 100, queueTimeoutMs: 1_000 },
  hedging: { enabled: true, delayMs: null, minDelayMs: 20, maxDelayMs: 1_000, maxPerRequest: 1 },
  stallDetection: { enabled: true, multiplier: 4, minTimeMs: 250 },
  drainTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  weights: null,
};

/** Overrides for {@link makeTraffic}: top-level fields, and nested mappings field by field. */
export interface TrafficOverrides {
  priorities?: string[][];
  overprovisioningFactor?: number;
  outlier?: Partial<TrafficSpec["outlier"]>;
  panic?: Partial<TrafficSpec["panic"]>;
  retries?: Partial<Omit<TrafficSpec["retries"], "backoff" | "budget">> & {
    backoff?: Partial<TrafficSpec["retries"]["backoff"]>;
    budget?: Partial<TrafficSpec["retries"]["budget"]>;
  };
  limits?: Partial<TrafficSpec["limits"]>;
  hedging?: Partial<TrafficSpec["hedging"]>;
  stallDetection?: Partial<TrafficSpec["stallDetection"]>;
  drainTimeoutMs?: number;
  requestTimeoutMs?: number;
  weights?: Record<string, number> | null;
  engine?: TrafficSpec["engine"];
}

/** A fresh {@link DEFAULT_TRAFFIC} (deep copy) with `overrides` applied. */
export function makeTraffic(overrides: TrafficOverrides = {}): TrafficSpec {
  const base = DEFAULT_TRAFFIC;
  return {
    engine: overrides.engine ?? base.engine,
    priorities: (overrides.priorities ?? base.priorities).map((priority) => [...priority]),
    overprovisioningFactor: overrides.overprovisioningFactor ?? base.overprovisioningFactor,
    outlier: { ...base.outlier, ...overrides.outlier },
    panic: { ...base.panic, ...overrides.panic },
    retries: {
      ...base.retries,
      ...overrides.retries,
      backoff: { ...base.retries.backoff, ...overrides.retries?.backoff },
      budget: { ...base.retries.budget, ...overrides.retries?.budget },
    },
    limits: { ...base.limits, ...overrides.limits },
    hedging: { ...base.hedging, ...overrides.hedging },
    stallDetection: { ...base.stallDetection, ...overrides.stallDetection },
    drainTimeoutMs: overrides.drainTimeoutMs ?? base.drainTimeoutMs,
    requestTimeoutMs: overrides.requestTimeoutMs ?? base.requestTimeoutMs,
    weights: overrides.weights === undefined || overrides.weights === null ? null : { ...overrides.weights },
  };
}

/**
 * Deploy defaults as the loader resolves them: steps 10 → 50 → 100 of 30s each (deadline 2m),
 * soak 10m, stable kept warm, 10 releases of history; analysis needs 50 requests a side and fails
 * on +1 % errors or p99 × 1.5 (and +50ms at least).
 */
export const DEFAULT_DEPLOY: DeploySpec = {
  steps: [10, 50, 100],
  stepDurationMs: 30_000,
  stepDeadlineMs: 120_000,
  soakMs: 600_000,
  keepStableWarm: true,
  historyLimit: 10,
  analysis: { minRequests: 50, maxErrorRateIncrease: 0.01, maxP99Ratio: 1.5, minP99IncreaseMs: 50 },
};

/** Overrides for {@link makeDeploy}: top-level fields, and `analysis` field by field. */
export interface DeployOverrides extends Partial<Omit<DeploySpec, "analysis">> {
  analysis?: Partial<DeploySpec["analysis"]>;
}

/** A fresh {@link DEFAULT_DEPLOY} with `overrides` applied. */
export function makeDeploy(overrides: DeployOverrides = {}): DeploySpec {
  const { analysis, steps, ...rest } = overrides;
  return {
    ...DEFAULT_DEPLOY,
    ...rest,
    steps: [...(steps ?? DEFAULT_DEPLOY.steps)],
    analysis: { ...DEFAULT_DEPLOY.analysis, ...analysis },
  };
}

/** SLO defaults as the loader resolves them: 1 % errors, p99 1s. */
export const DEFAULT_SLO: SloSpec = { errorRate: 0.01, p99Ms: 1_000 };

/**
 * Capacity defaults as the loader resolves them, except `maxReplicas`, which {@link makeService}
 * sets to 2 × replicas: rps and concurrency unknown, target utilization 80 %.
 */
export const DEFAULT_CAPACITY: Omit<CapacitySpec, "maxReplicas"> = {
  rps: null,
  concurrency: null,
  targetUtilization: 0.8,
};

/**
 * Failover defaults as the loader resolves them: down at 50 % unhealthy, degraded at 20 %, 25 %
 * steps every 5s, failback after 30s healthy, 5m between automated failovers, not automatic.
 */
export const DEFAULT_FAILOVER: FailoverSpec = {
  downShare: 0.5,
  degradedShare: 0.2,
  stepPercent: 25,
  stepIntervalMs: 5_000,
  stabilizationMs: 30_000,
  minIntervalMs: 300_000,
  confirmMs: 2_000,
  automatic: false,
};

/** What a release record may set beyond the fixture's command line (all default to empty). */
export interface ReleaseOverrides {
  env?: Record<string, string>;
  secrets?: ReleaseSpec["secrets"];
  requires?: { schemas?: Record<string, string>; apis?: Record<string, string> };
  provides?: ReleaseSpec["provides"];
  migrations?: ReleaseSpec["migrations"];
}

export interface ServiceOverrides {
  name: string;
  replicas?: number;
  /** The version that should run; defaults to "v1". Added to `versions` if missing. */
  release?: string;
  /** Release versions the service knows; defaults to ["v1", "v2"]. */
  versions?: string[];
  dependsOn?: string[];
  basePort?: number;
  port?: number;
  placement?: ZoneHost[];
  probes?: ProbeSet;
  restart?: RestartOverrides;
  /** Default: {@link makeTraffic} with one priority holding every placement zone. */
  traffic?: TrafficOverrides;
  deploy?: DeployOverrides;
  slo?: Partial<SloSpec>;
  /** Default: {@link DEFAULT_CAPACITY} with `maxReplicas` = 2 × replicas. */
  capacity?: Partial<CapacitySpec>;
  /** Per-version release records (secrets, requires, provides, migrations, extra env). */
  releases?: Record<string, ReleaseOverrides>;
}

const FIXTURE_DIR = "/tmp/homeostat-fixture";

/** A release of `service` running `node <service>.js --port {port}`, with `overrides` applied. */
export function makeRelease(service: string, version: string, overrides: ReleaseOverrides = {}): ReleaseSpec {
  return {
    version,
    command: "/usr/bin/env",
    args: ["node", `${service}.js`, "--port", "{port}"],
    env: { SERVICE_VERSION: version, ...overrides.env },
    config: { service, version },
    cwd: FIXTURE_DIR,
    secrets: (overrides.secrets ?? []).map((secret) => ({ ...secret })),
    requires: {
      schemas: { ...overrides.requires?.schemas },
      apis: { ...overrides.requires?.apis },
    },
    provides: { ...overrides.provides },
    migrations: (overrides.migrations ?? []).map((migration) => ({ ...migration })),
  };
}

function defaultProbes(): ProbeSet {
  return {
    readiness: {
      check: { kind: "http", path: "/healthz", expectStatus: [200, 299] },
      intervalMs: 1_000,
      timeoutMs: 500,
      failureThreshold: 3,
      successThreshold: 1,
      initialDelayMs: 0,
    },
    liveness: {
      check: { kind: "tcp" },
      intervalMs: 2_000,
      timeoutMs: 500,
      failureThreshold: 3,
      successThreshold: 1,
      initialDelayMs: 0,
    },
  };
}

/** One service; `index` spaces default base ports apart so services never share one. */
export function makeService(overrides: ServiceOverrides, index = 0): ServiceSpec {
  const release = overrides.release ?? "v1";
  const versions = overrides.versions ?? ["v1", "v2"];
  const listed = versions.includes(release) ? versions : [...versions, release];
  const extra = Object.keys(overrides.releases ?? {}).filter((version) => !listed.includes(version));
  const releases: Record<string, ReleaseSpec> = {};
  for (const version of [...listed, ...extra]) {
    releases[version] = makeRelease(overrides.name, version, overrides.releases?.[version]);
  }
  const placement = overrides.placement ?? [{ zone: "local", host: "127.0.0.1" }];
  const zones = [...new Set(placement.map((entry) => entry.zone))];
  const replicas = overrides.replicas ?? 1;
  const service: ServiceSpec = {
    name: overrides.name,
    releases,
    release,
    replicas,
    basePort: overrides.basePort ?? 20_000 + index * 100,
    placement,
    probes: overrides.probes ?? defaultProbes(),
    dependsOn: overrides.dependsOn ?? [],
    restart: makeRestart(overrides.restart),
    traffic: makeTraffic({ priorities: [zones], ...overrides.traffic }),
    deploy: makeDeploy(overrides.deploy),
    slo: { ...DEFAULT_SLO, ...overrides.slo },
    capacity: { ...DEFAULT_CAPACITY, maxReplicas: 2 * replicas, ...overrides.capacity },
  };
  if (overrides.port !== undefined) service.port = overrides.port;
  return service;
}

export interface FleetOverrides {
  name?: string;
  file?: string;
  services: ServiceOverrides[];
  /** Datastores as resolved (default none). */
  datastores?: DatastoreSpec[];
  security?: Partial<SecuritySpec>;
  failover?: Partial<FailoverSpec>;
}

/**
 * A resolved fleet. Services come out in dependency order (dependencies first, otherwise in the
 * order given), as the real resolver guarantees; an unknown or cyclic dependency is a fixture
 * mistake and throws.
 */
export function makeFleet(overrides: FleetOverrides): FleetSpec {
  const services = overrides.services.map((s, i) => makeService(s, i));
  return {
    file: overrides.file ?? `${FIXTURE_DIR}/fleet.yaml`,
    name: overrides.name ?? "test-fleet",
    services: dependencyOrder(services),
    datastores: (overrides.datastores ?? []).map((datastore) => ({ ...datastore })),
    dataPlane: { workers: 1 },
    security: {
      deniedReleases: [...(overrides.security?.deniedReleases ?? [])],
      revokedSecrets: [...(overrides.security?.revokedSecrets ?? [])],
    },
    failover: { ...DEFAULT_FAILOVER, ...overrides.failover },
  };
}

function dependencyOrder(services: ServiceSpec[]): ServiceSpec[] {
  const byName = new Map(services.map((s) => [s.name, s]));
  if (byName.size !== services.length) throw new Error("fixture: duplicate service names");
  const ordered: ServiceSpec[] = [];
  const state = new Map<string, "visiting" | "done">();
  const visit = (service: ServiceSpec): void => {
    const seen = state.get(service.name);
    if (seen === "done") return;
    if (seen === "visiting") throw new Error(`fixture: dependency cycle through ${service.name}`);
    state.set(service.name, "visiting");
    for (const dep of service.dependsOn) {
      const target = byName.get(dep);
      if (target === undefined) throw new Error(`fixture: ${service.name} depends on unknown ${dep}`);
      visit(target);
    }
    state.set(service.name, "done");
    ordered.push(service);
  };
  for (const service of services) visit(service);
  return ordered;
}
