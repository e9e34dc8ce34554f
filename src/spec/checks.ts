import { checkDependencies } from "./dependencies.ts";
import { placeService } from "./placement.ts";
import { checkPorts, type PortNode } from "./ports.ts";
import { checkProbes } from "./probes.ts";
import type { Problem } from "./problem.ts";
import type { HostsInput, ProbesInput, ServiceInput } from "./schema.ts";
import { didYouMean } from "./suggest.ts";

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
}

/** What the cross-field rules look at: the parts of a fleet file that passed the schema. */
export interface CheckSubject {
  hosts: HostsInput | undefined;
  /** False when `hosts` itself is invalid: placements cannot be judged against it. */
  hostsKnown: boolean;
  defaultProbes: ProbesInput | undefined;
  /** In declaration order. */
  services: readonly CheckedService[];
  /** Every service name in the file, valid or not. */
  declaredServices: readonly string[];
}

/**
 * The rules that relate several values (the schema checks single values): releases, placement,
 * ports, dependencies and probe timing. Run on whatever part of the file is valid, so that one
 * bad value does not hide the problems elsewhere.
 */
export function checkFleet(subject: CheckSubject): Problem[] {
  const problems: Problem[] = [...checkProbes(subject.defaultProbes, ["defaults", "probes"])];
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
    if (subject.hostsKnown) problems.push(...placeService(path, service.placement, subject.hosts).problems);
    problems.push(...checkProbes(service.probes, [...path, "probes"]));
  }
  const portNodes = subject.services.filter(hasPorts);
  const dependencyNodes = subject.services.map((service) => ({
    name: service.name,
    dependsOn: service.dependsOn ?? [],
  }));
  problems.push(...checkPorts(portNodes), ...checkDependencies(dependencyNodes, subject.declaredServices));
  return problems;
}

function hasPorts(service: CheckedService): service is CheckedService & PortNode {
  return service.replicas !== undefined && service.basePort !== undefined;
}
