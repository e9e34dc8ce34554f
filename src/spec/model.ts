/**
 * The resolved fleet: what the rest of Homeostat consumes after a fleet file has been parsed,
 * validated and had its defaults applied. Durations are milliseconds; paths are absolute.
 *
 * The YAML surface (see `docs/fleet-spec.md`) is richer in spelling ("500ms", "2s", omitted
 * defaults); this model is the one canonical shape.
 */

import type { NotificationsSpec } from "./notifications.ts";
import type { StoreSpec } from "./stores.ts";

/** A probe's transport. `port` absent means the instance's assigned port. */
export type ProbeCheck =
  | { kind: "http"; path: string; port?: number; expectStatus: [min: number, max: number] }
  | { kind: "tcp"; port?: number }
  | { kind: "exec"; command: string; args: string[] };

/** One probe with its schedule and thresholds (Kubernetes semantics). */
export interface ProbeSpec {
  check: ProbeCheck;
  intervalMs: number;
  timeoutMs: number;
  /** Consecutive failures before the probe's condition is considered failed. */
  failureThreshold: number;
  /** Consecutive successes before the probe's condition is considered passing again. */
  successThreshold: number;
  /** Delay before the first run after the instance starts. */
  initialDelayMs: number;
}

export interface ProbeSet {
  /** Gates the other two: until it passes, liveness and readiness do not run. */
  startup?: ProbeSpec;
  readiness?: ProbeSpec;
  liveness?: ProbeSpec;
}

export interface BackoffSpec {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** Fraction of the delay randomised either way, 0..1. */
  jitter: number;
}

export interface RestartSpec {
  policy: "always" | "on-failure" | "never";
  backoff: BackoffSpec;
  /** `failures` restarts within `windowMs` make the slot crash-looping. */
  crashLoop: { failures: number; windowMs: number };
  /** SIGTERM, then SIGKILL after this long. */
  stopGracePeriodMs: number;
  /** An instance that stays ready this long resets its slot's backoff. */
  resetAfterMs: number;
}

/** A release: everything needed to run one version of a service. */
export interface ReleaseSpec {
  version: string;
  command: string;
  /** May contain `{port}`, `{instance}`, `{service}`, `{zone}`, `{host}` placeholders. */
  args: string[];
  env: Record<string, string>;
  /** Arbitrary structured config, handed to the process as JSON in `HOMEOSTAT_CONFIG`. */
  config: unknown;
  /** Working directory, absolute (defaults to the fleet file's directory). */
  cwd: string;
  /** Secret references (never values): what the release was built and tested against. */
  secrets: SecretRef[];
  /** What must hold in the world for this release to work. */
  requires: {
    /** Datastore name → semver range over schema versions (integers are read as N.0.0), e.g. ">=5 <7". */
    schemas: Record<string, string>;
    /** Dependency service name → semver range of the API it must serve, e.g. "^2". */
    apis: Record<string, string>;
  };
  /** The API version this release serves (semver), if it serves one. */
  provides: { api?: string };
  /** Schema migrations this release applies when it is deployed. */
  migrations: MigrationSpec[];
  /** The permission-policy hash its instances must report on `invariants.policyHash`, if declared. */
  policyHash?: string;
}

export interface SecretRef {
  name: string;
  version: string;
}

export interface MigrationSpec {
  datastore: string;
  from: number;
  to: number;
  /** False when going back needs more than running older code (dropped columns, rewritten data). */
  reversible: boolean;
}

/** Progressive delivery settings of a service. */
export interface DeploySpec {
  /** Traffic percentages of the new release, in order; the last must be 100. */
  steps: number[];
  /** How long each step serves before its analysis is judged. */
  stepDurationMs: number;
  /** A step without a passing verdict by then aborts the deploy (and rolls back). */
  stepDeadlineMs: number;
  /** How long the new release must serve all traffic within its SLO to become proven. */
  soakMs: number;
  /** Keep the previous release's instances running (taking no traffic) until the new one is proven. */
  keepStableWarm: boolean;
  /** Releases kept in history per service. */
  historyLimit: number;
  analysis: {
    /** Fewer requests than this on either side: the verdict is inconclusive, never a pass. */
    minRequests: number;
    /** Fail when canary error rate exceeds stable's by more than this (absolute, 0..1)… */
    maxErrorRateIncrease: number;
    /** …or canary p99 exceeds stable's × this ratio (and by at least `minP99IncreaseMs`). */
    maxP99Ratio: number;
    minP99IncreaseMs: number;
  };
}

/** What "within SLO" means for a service (used to prove releases). */
export interface SloSpec {
  /** Highest acceptable error rate (0..1). */
  errorRate: number;
  p99Ms: number;
}

export interface DatastoreSpec {
  name: string;
  /** How to read the live schema version: a command printing an integer. Absent: Homeostat records it when migrations run. */
  versionCommand?: { command: string; args: string[]; cwd: string };
  /** Version assumed before any migration ran and when no command is given. */
  initialVersion: number;
}

/** Known-bad facts that rollbacks must respect. */
export interface SecuritySpec {
  deniedReleases: { service: string; version: string; reason: string }[];
  revokedSecrets: { name: string; version: string; reason: string }[];
}

/**
 * How much one instance of a service can take, for capacity planning (failover, headroom).
 * Always resolved with defaults.
 */
export interface CapacitySpec {
  /** Requests/s one instance serves at 100 % utilization; null = unknown (no capacity planning for it). */
  rps: number | null;
  /** Concurrent requests one instance handles at 100 %; null = unknown. */
  concurrency: number | null;
  /** Utilization no instance may be pushed past (0..1). */
  targetUtilization: number;
  /** Upper bound on instances of the service (for scale-up during failover). */
  maxReplicas: number;
}

/** When a failure domain (zone) counts as down or degraded, and how traffic leaves and returns. */
export interface FailoverSpec {
  /** A zone is down when at least this share of its instances is unhealthy (0..1]. */
  downShare: number;
  /** A zone is degraded when at least this share of its instances is unhealthy (0..downShare]. */
  degradedShare: number;
  /** Share of the failed domain's traffic moved per step (1..100). */
  stepPercent: number;
  /** Time between two steps of an evacuation or a failback. */
  stepIntervalMs: number;
  /** Failback: healthy this long before traffic returns; then in steps. */
  stabilizationMs: number;
  /** Minimum time between two automated failovers. */
  minIntervalMs: number;
  /** A zone must stay down this long before automatic evacuation (instance blips are repaired in place). */
  confirmMs: number;
  /** Evacuate automatically when a domain is down (else only `homeostat failover`). */
  automatic: boolean;
}

/** A rate limit on automated actions: at most `max` of them within any `windowMs`. */
export interface RateLimitSpec {
  max: number;
  windowMs: number;
}

/**
 * Fleet-wide automation brakes (see docs/brakes.md): how much automation may do across the whole
 * fleet before it stops and an operator decides. Always resolved with defaults by `resolveFleet`.
 */
export interface BrakesSpec {
  /** Largest share of the fleet's instances automated actions may act on at once, (0..1]. */
  blastRadius: number;
  /** Automated rollbacks (a deploy's analysis failing), all services together. */
  rollbacks: RateLimitSpec;
  /** Automated zone evacuations. */
  failovers: RateLimitSpec;
}

/** A service's automation brakes, merged field by field over `defaults.brakes`. */
export interface ServiceBrakesSpec {
  /** Automated restarts and replacements of the service's instances, every slot together. */
  restarts: RateLimitSpec;
  /** Largest share of the service's instances automated actions may act on at once, (0..1]. */
  blastRadius: number;
}

export interface ZoneHost {
  zone: string;
  host: string;
}

/** How the data plane treats a service's traffic (see docs/data-plane.md). Always resolved with defaults. */
export interface TrafficSpec {
  /**
   * Which data plane moves the service's bytes: the embedded Node proxy, or a managed HAProxy that
   * Homeostat drives through its Runtime API (see docs/data-plane.md#engines).
   */
  engine: TrafficEngine;
  /**
   * Zones in priority order: priority 0 gets all traffic while healthy enough, the next ones take
   * the spill. Zones of the service's placement that are not listed form one last priority.
   */
  priorities: string[][];
  /** Envoy's overprovisioning factor: a priority at h % healthy keeps min(1, h × factor) of the load. */
  overprovisioningFactor: number;
  outlier: {
    /** Consecutive 5xx, connect errors, resets or timeouts that eject an instance. */
    consecutiveFailures: number;
    /** Ejection lasts base × (times ejected), capped at max. */
    baseEjectionMs: number;
    maxEjectionMs: number;
    /** Never eject more than this share of the service's ready instances. */
    maxEjectionPercent: number;
  };
  panic: {
    /** Below this share of healthy (non-ejected) instances, the service is in panic. */
    thresholdPercent: number;
    /** `send-to-all`: ignore ejections in panic. `fail-closed`: keep ejected instances out; 503 if none is left. */
    mode: "send-to-all" | "fail-closed";
  };
  retries: {
    /** Total attempts including the first (1 = no retries). */
    maxAttempts: number;
    perTryTimeoutMs: number;
    backoff: { initialMs: number; maxMs: number };
    budget: { ratio: number; windowMs: number; minPerSecond: number };
  };
  limits: {
    /** Hard cap of concurrent requests per instance. */
    maxConcurrentPerInstance: number;
    /** Adapt the per-instance limit to latency (gradient), below the hard cap. */
    adaptive: boolean;
    /** Requests waiting for admission, and how long they may wait. */
    queueSize: number;
    queueTimeoutMs: number;
  };
  /**
   * Hedging: an idempotent request with a replayable body whose attempt is still waiting after the
   * hedge delay gets a second attempt on another instance; the first answer wins.
   */
  hedging: {
    enabled: boolean;
    /** A fixed hedge delay; null: derived from the service's recent latency, within min..max. */
    delayMs: number | null;
    minDelayMs: number;
    maxDelayMs: number;
    /** Hedges one request may send over its life (at most two of its attempts are in flight at once). */
    maxPerRequest: number;
  };
  /**
   * Stalled instances: one that has had attempts waiting and answered none for
   * max(hedge delay × multiplier, minTime) while a peer answers gets no new requests until it answers.
   */
  stallDetection: {
    enabled: boolean;
    multiplier: number;
    minTimeMs: number;
  };
  /** How long a removed instance may finish its in-flight requests. */
  drainTimeoutMs: number;
  /** Whole-request deadline, all attempts included. */
  requestTimeoutMs: number;
  /** Release weights (percent-like, any positive scale); null = everything to the current release. */
  weights: Record<string, number> | null;
}

/** The data-plane engines a service's traffic can go through. */
export const TRAFFIC_ENGINES = ["embedded", "haproxy"] as const;
export type TrafficEngine = (typeof TRAFFIC_ENGINES)[number];

/**
 * Security invariants of a service, probed on every ready instance (see docs/security-invariants.md).
 * Resolved with defaults; absent on a service that declares none (nor inherits any).
 */
export interface InvariantsSpec {
  /** Paths that must answer one of `expect` to a request without credentials. */
  protectedPaths: { path: string; method: string; expect: number[] }[];
  /** An endpoint every instance answers with the same permission-policy hash. */
  policyHash: { path: string } | null;
  /** Time between two probe rounds. */
  intervalMs: number;
  /** Time before one probe request fails. */
  timeoutMs: number;
}

export interface ServiceSpec {
  name: string;
  releases: Record<string, ReleaseSpec>;
  /** Version key into `releases` that should be running. */
  release: string;
  replicas: number;
  /**
   * Instance slot i listens on `basePort + i`. A service reserves `2 × replicas` ports: slots
   * 0..replicas-1 and replicas..2·replicas-1 are its two banks, so a new release can start beside
   * the running one during a progressive deploy.
   */
  basePort: number;
  /** Front port for the service's traffic listener (data plane), if any. */
  port?: number;
  /** Data-plane settings; used when `port` is set. */
  traffic: TrafficSpec;
  deploy: DeploySpec;
  slo: SloSpec;
  /** What one instance can take; `maxReplicas` bounds scale-up during failover. */
  capacity: CapacitySpec;
  /** Where each slot runs: `placement[i % placement.length]`. Never empty. */
  placement: ZoneHost[];
  probes: ProbeSet;
  /**
   * Set when the fleet file declares no probe for this service: the defaults in force, TCP on the
   * instance port (`tcp`) or the process alone (`process`). See docs/fleet-spec.md#default-probes.
   */
  probeDefaults?: "tcp" | "process";
  dependsOn: string[];
  restart: RestartSpec;
  /** Security invariants; absent when the service declares (and inherits) none. */
  invariants?: InvariantsSpec;
  /** Automation brakes (always set by `resolveFleet`; a service built by hand may leave it out: the defaults). */
  brakes?: ServiceBrakesSpec;
}

export interface FleetSpec {
  /** Absolute path of the file this came from. */
  file: string;
  name: string;
  /** Services in dependency order (dependencies first). */
  services: ServiceSpec[];
  datastores: DatastoreSpec[];
  security: SecuritySpec;
  /** Failure-domain failover settings (fleet-wide). */
  failover: FailoverSpec;
  /** The data-plane processes (fleet-wide: one data plane serves every service port). */
  dataPlane: { workers: number | "auto" };
  /** Webhooks (always set by `resolveFleet`; a fleet built by hand may leave it out: none). */
  notifications?: NotificationsSpec;
  /** Automation brakes (always set by `resolveFleet`; a fleet built by hand may leave it out: the defaults). */
  brakes?: BrakesSpec;
  /** Replicated stores Homeostat runs and fails over (`resolveFleet` always sets it; by hand: none). */
  stores?: StoreSpec[];
}

/** The slot-th instance of a service is named `${service}-${slot}`. */
export function instanceName(service: string, slot: number): string {
  return `${service}-${slot}`;
}

export function placementOf(service: ServiceSpec, slot: number): ZoneHost {
  return service.placement[slot % service.placement.length]!;
}
