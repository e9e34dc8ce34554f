import { checkCapacities } from "./capacityChecks.ts";
import { checkDependencies } from "./dependencies.ts";
import { checkDeploys } from "./deployChecks.ts";
import { checkFailover } from "./failoverChecks.ts";
import { placeService } from "./placement.ts";
import { checkPorts, type PortNode } from "./ports.ts";
import { checkProbes } from "./probes.ts";
import type { Problem } from "./problem.ts";
import { checkReleaseRecords, type ReleaseRecordInput } from "./releaseChecks.ts";
import type {
  CapacityInput,
  DefaultTrafficInput,
  DeployInput,
  FailoverInput,
  HostsInput,
  ProbesInput,
  ServiceInput,
  TrafficInput,
} from "./schema.ts";
import { checkSecurity } from "./securityChecks.ts";
import { didYouMean } from "./suggest.ts";
import { placementZones } from "./traffic.ts";
import { checkTraffic, type TrafficCheckedService } from "./trafficChecks.ts";

/**
 * The fields of one service that the cross-field rules read. Any may be missing when the file
 * is invalid: a rule whose inputs are missing is skipped (the schema has reported why).
 */
export interface CheckedService {
  name: string;
  release?: string | undefined;
  /** The keys of `releases`. */
  versions?: string[] | undefined;
  replicas?: number | undefined;
  basePort?: number | undefined;
  port?: number | undefined;
  placement?: ServiceInput["placement"];
  probes?: ProbesInput | undefined;
  dependsOn?: string[] | undefined;
  traffic?: TrafficInput | undefined;
  deploy?: DeployInput | undefined;
  capacity?: CapacityInput | undefined;
  /** Release records by version (what they require and migrate). */
  releases?: Record<string, ReleaseRecordInput> | undefined;
}

/** What the cross-field rules look at: the parts of a fleet file that passed the schema. */
export interface CheckSubject {
  hosts: HostsInput | undefined;
  /** False when `hosts` itself is invalid: placements cannot be judged against it. */
  hostsKnown: boolean;
  defaultProbes: ProbesInput | undefined;
  defaultTraffic: DefaultTrafficInput | undefined;
  /** In declaration order. */
  services: readonly CheckedService[];
  defaultDeploy: DeployInput | undefined;
  defaultCapacity: CapacityInput | undefined;
  /** The top-level `failover` mapping (its valid fields). */
  failover: FailoverInput | undefined;
  /** Every service name in the file, valid or not. */
  declaredServices: readonly string[];
  /** Every datastore name in the file, valid or not. */
  declaredDatastores: readonly string[];
  /** The `service` of each `security.deniedReleases` entry, in order (undefined where invalid). */
  deniedServices: readonly (string | undefined)[];
}

/**
 * The rules that relate several values (the schema checks single values): releases, placement,
 * ports, dependencies, probe timing, traffic, deploy and capacity settings, release records
 * (datastores, APIs, migrations), security facts and failover thresholds. Run on whatever part of the file is valid, so that one bad
 * value does not hide the problems elsewhere.
 */
export function checkFleet(subject: CheckSubject): Problem[] {
  const problems: Problem[] = [...checkProbes(subject.defaultProbes, ["defaults", "probes"])];
  const trafficServices: TrafficCheckedService[] = [];
  for (const service of subject.services) {
    const path = ["services", service.name];
    const { release, versions } = service;
    if (release !== undefined && versions !== undefined && !versions.includes(release)) {
      problems.push({
        path: [...path, "release"],
        target: "value",
        message: `unknown release "${release}"${didYouMean(release, versions)} (releases: ${versions.join(", ")})`,
      });
    }
    let zones: string[] | undefined;
    if (subject.hostsKnown) {
      const placed = placeService(path, service.placement, subject.hosts);
      problems.push(...placed.problems);
      if (placed.problems.length === 0) zones = placementZones(placed.placement);
    }
    problems.push(...checkProbes(service.probes, [...path, "probes"]));
    trafficServices.push({
      name: service.name,
      traffic: service.traffic,
      versions: service.versions,
      zones,
      hasPort: service.port !== undefined,
    });
  }
  problems.push(...checkTraffic(subject.defaultTraffic, trafficServices));
  const portNodes = subject.services.filter(hasPorts);
  const dependencyNodes = subject.services.map((service) => ({
    name: service.name,
    dependsOn: service.dependsOn ?? [],
  }));
  problems.push(...checkPorts(portNodes), ...checkDependencies(dependencyNodes, subject.declaredServices));
  problems.push(...checkDeploys(subject.defaultDeploy, subject.services));
  problems.push(...checkCapacities(subject.defaultCapacity, subject.services));
  const declared = { services: subject.declaredServices, datastores: subject.declaredDatastores };
  problems.push(...checkReleaseRecords(subject.services, declared));
  problems.push(...checkSecurity(subject.deniedServices, subject.declaredServices));
  problems.push(...checkFailover(subject.failover));
  return problems;
}

function hasPorts(service: CheckedService): service is CheckedService & PortNode {
  return service.replicas !== undefined && service.basePort !== undefined;
}
