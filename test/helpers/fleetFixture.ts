/**
 * Builds resolved `FleetSpec` values directly (no YAML, no parsing) for tests of the pure core.
 * Every field has a sensible default so a test spells out only what it is about.
 */

import type {
  BackoffSpec,
  FleetSpec,
  ProbeSet,
  ReleaseSpec,
  RestartSpec,
  ServiceSpec,
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
}

const FIXTURE_DIR = "/tmp/homeostat-fixture";

function makeRelease(service: string, version: string): ReleaseSpec {
  return {
    version,
    command: "/usr/bin/env",
    args: ["node", `${service}.js`, "--port", "{port}"],
    env: { SERVICE_VERSION: version },
    config: { service, version },
    cwd: FIXTURE_DIR,
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
  const allVersions = versions.includes(release) ? versions : [...versions, release];
  const releases: Record<string, ReleaseSpec> = {};
  for (const version of allVersions) releases[version] = makeRelease(overrides.name, version);
  const service: ServiceSpec = {
    name: overrides.name,
    releases,
    release,
    replicas: overrides.replicas ?? 1,
    basePort: overrides.basePort ?? 20_000 + index * 100,
    placement: overrides.placement ?? [{ zone: "local", host: "127.0.0.1" }],
    probes: overrides.probes ?? defaultProbes(),
    dependsOn: overrides.dependsOn ?? [],
    restart: makeRestart(overrides.restart),
  };
  if (overrides.port !== undefined) service.port = overrides.port;
  return service;
}

export interface FleetOverrides {
  name?: string;
  file?: string;
  services: ServiceOverrides[];
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
