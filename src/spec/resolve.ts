import path from "node:path";
import { resolveBrakes, resolveServiceBrakes } from "./brakes.ts";
import { resolveCapacity } from "./capacity.ts";
import { dependencyOrder } from "./dependencies.ts";
import { resolveDeploy } from "./deploy.ts";
import { resolveFailover } from "./failover.ts";
import { resolveInvariants } from "./invariants.ts";
import type { FleetSpec, ReleaseSpec, ServiceSpec } from "./model.ts";
import { resolveNotifications } from "./notifications.ts";
import { placeService } from "./placement.ts";
import { declaresNoProbe, defaultProbes, resolveProbes } from "./probes.ts";
import { resolveDatastores, resolveReleaseRecord, resolveSecurity } from "./records.ts";
import { resolveRestart } from "./restart.ts";
import type { FleetInput, ReleaseInput, ServiceInput } from "./schema.ts";
import { resolveSlo } from "./slo.ts";
import { resolveStores } from "./stores.ts";
import { resolveTraffic } from "./traffic.ts";

/**
 * The canonical {@link FleetSpec} for a fleet file that passed the schema and the cross-field
 * checks: defaults applied, durations in milliseconds, paths absolute, services in dependency
 * order. `file` is the absolute path of the fleet file.
 */
export function resolveFleet(input: FleetInput, file: string): FleetSpec {
  const directory = path.dirname(file);
  const services = new Map<string, ServiceSpec>();
  for (const [name, service] of Object.entries(input.services)) {
    services.set(name, resolveService(name, service, input, directory));
  }
  const order = dependencyOrder([...services.values()]);
  return {
    file,
    name: input.name ?? path.basename(directory),
    services: order.map((name) => services.get(name)!),
    datastores: resolveDatastores(input.datastores, directory),
    security: resolveSecurity(input.security),
    failover: resolveFailover(input.failover),
    dataPlane: { workers: input.dataPlane?.workers ?? 1 },
    notifications: resolveNotifications(input.notifications),
    brakes: resolveBrakes(input.brakes),
    stores: resolveStores(input.stores, input.hosts),
  };
}

function resolveService(
  name: string,
  service: ServiceInput,
  fleet: FleetInput,
  directory: string,
): ServiceSpec {
  const releases: Record<string, ReleaseSpec> = {};
  for (const [version, release] of Object.entries(service.releases)) {
    releases[version] = resolveRelease(version, release, directory);
  }
  const placement = placeService(["services", name], service.placement, fleet.hosts).placement;
  const resolved: ServiceSpec = {
    name,
    releases,
    release: service.release,
    replicas: service.replicas,
    basePort: service.basePort,
    traffic: resolveTraffic(fleet.defaults?.traffic, service.traffic, placement),
    placement,
    probes: resolveProbes(fleet.defaults?.probes, service.probes),
    dependsOn: service.dependsOn ?? [],
    restart: resolveRestart(fleet.defaults?.restart, service.restart),
    deploy: resolveDeploy(fleet.defaults?.deploy, service.deploy),
    slo: resolveSlo(fleet.defaults?.slo, service.slo),
    capacity: resolveCapacity(fleet.defaults?.capacity, service.capacity, service.replicas),
    brakes: resolveServiceBrakes(fleet.defaults?.brakes, service.brakes, service.replicas),
  };
  if (service.port !== undefined) resolved.port = service.port;
  if (declaresNoProbe(fleet.defaults?.probes, service.probes)) {
    // No probe declared: a listener is probed on its port, anything else judged by its process.
    const takesPort =
      service.port !== undefined || Object.values(releases).some((release) => passesPort(release));
    const defaults = defaultProbes(takesPort);
    resolved.probes = defaults.probes;
    resolved.probeDefaults = defaults.kind;
  }
  const invariants = resolveInvariants(fleet.defaults?.invariants, service.invariants);
  if (invariants !== undefined) resolved.invariants = invariants;
  return resolved;
}

function resolveRelease(version: string, release: ReleaseInput, directory: string): ReleaseSpec {
  return {
    version,
    command: release.command,
    args: release.args ?? [],
    env: release.env ?? {},
    config: release.config === undefined ? {} : release.config,
    cwd: path.resolve(directory, release.cwd ?? "."),
    ...resolveReleaseRecord(release),
    ...(release.policyHash === undefined ? {} : { policyHash: release.policyHash }),
  };
}

/** Whether a release hands its instance the `{port}` placeholder (in its command, args or env). */
function passesPort(release: ReleaseSpec): boolean {
  return [release.command, ...release.args, ...Object.values(release.env)].some((text) =>
    text.includes("{port}"),
  );
}
