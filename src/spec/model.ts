/**
 * The resolved fleet: what the rest of Homeostat consumes after a fleet file has been parsed,
 * validated and had its defaults applied. Durations are milliseconds; paths are absolute.
 *
 * The YAML surface (see `docs/fleet-spec.md`) is richer in spelling ("500ms", "2s", omitted
 * defaults); this model is the one canonical shape.
 */

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
}

export interface ZoneHost {
  zone: string;
  host: string;
}

export interface ServiceSpec {
  name: string;
  releases: Record<string, ReleaseSpec>;
  /** Version key into `releases` that should be running. */
  release: string;
  replicas: number;
  /** Instance slot i listens on `basePort + i`. */
  basePort: number;
  /** Front port for the service's traffic listener (data plane), if any. */
  port?: number;
  /** Where each slot runs: `placement[i % placement.length]`. Never empty. */
  placement: ZoneHost[];
  probes: ProbeSet;
  dependsOn: string[];
  restart: RestartSpec;
}

export interface FleetSpec {
  /** Absolute path of the file this came from. */
  file: string;
  name: string;
  /** Services in dependency order (dependencies first). */
  services: ServiceSpec[];
}

/** The slot-th instance of a service is named `${service}-${slot}`. */
export function instanceName(service: string, slot: number): string {
  return `${service}-${slot}`;
}

export function placementOf(service: ServiceSpec, slot: number): ZoneHost {
  return service.placement[slot % service.placement.length]!;
}
