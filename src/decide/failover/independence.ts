/**
 * Redundancy that is not: replicas that share a zone or a host, a backup priority on its primary's
 * hosts, a single instance that others depend on. Read from the resolved spec alone (where each
 * slot is placed), so `check` can say it before anything fails.
 */

import { type FleetSpec, placementOf, type ServiceSpec, type ZoneHost } from "../../spec/model.ts";
import { compare } from "./serviceEvacuation.ts";
import type { FindingSeverity, IndependenceFinding } from "./types.ts";
import { count } from "./words.ts";

const SEVERITY_RANK: Record<FindingSeverity, number> = { critical: 0, warning: 1, info: 2 };

/**
 * Every shared-fate finding of the fleet, most severe first, then by service, kind and message:
 * - `single-zone` (critical): replicas > 1, all in one zone; (warning): more than half in one zone,
 *   so losing that zone leaves less than half the service;
 * - `single-host` (critical): replicas > 1, all on one host;
 * - `backup-shares-domain` (critical): a backup traffic priority runs on a host of the primary's;
 * - `shared-single-dependency` (critical): one instance that two or more services depend on;
 * - `single-instance`: one instance that one service depends on (warning) or none does (info).
 */
export function findSharedFate(fleet: FleetSpec): IndependenceFinding[] {
  const fleetZones = uniqueSorted(fleet.services.flatMap((service) => service.placement.map((p) => p.zone)));
  const fleetHosts = uniqueSorted(fleet.services.flatMap((service) => service.placement.map((p) => p.host)));
  const findings: IndependenceFinding[] = [];
  for (const service of fleet.services) {
    if (service.replicas < 1) continue;
    const slots = slotsOf(service);
    const dependents = fleet.services
      .filter((other) => other.dependsOn.includes(service.name))
      .map((other) => other.name)
      .sort(compare);
    if (service.replicas === 1) {
      findings.push(singleInstance(service, slots[0]!, dependents, fleetZones));
      continue;
    }
    const zoneFinding = zoneSpread(service, slots, fleetZones);
    if (zoneFinding !== null) findings.push(zoneFinding);
    const hosts = uniqueSorted(slots.map((slot) => slot.host));
    if (hosts.length === 1) findings.push(singleHost(service, hosts[0]!, fleetHosts));
    findings.push(...backupSharesHosts(service, slots));
  }
  return findings.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      compare(a.service, b.service) ||
      compare(a.kind, b.kind) ||
      compare(a.message, b.message),
  );
}

/**
 * Zones that fail with `zone`: those that share a host with it in some service's placement (a host
 * cannot outlive itself). Failover must not pick them as targets.
 */
export function zonesSharingFate(fleet: FleetSpec, zone: string): string[] {
  const hostsInZone = new Set<string>();
  const all = fleet.services.flatMap((service) => service.placement);
  for (const place of all) if (place.zone === zone) hostsInZone.add(place.host);
  return uniqueSorted(all.filter((p) => p.zone !== zone && hostsInZone.has(p.host)).map((p) => p.zone));
}

/**
 * Zones where failover must not add capacity: the `failed` ones (failing or shifted) and every zone
 * that shares fate with one of them. Sorted.
 */
export function zonesToAvoid(fleet: FleetSpec, failed: Iterable<string>): string[] {
  const avoid = new Set<string>();
  for (const zone of failed) {
    avoid.add(zone);
    for (const other of zonesSharingFate(fleet, zone)) avoid.add(other);
  }
  return [...avoid].sort(compare);
}

function slotsOf(service: ServiceSpec): ZoneHost[] {
  return Array.from({ length: service.replicas }, (_, slot) => placementOf(service, slot));
}

function uniqueSorted(values: readonly string[]): string[] {
  return [...new Set(values)].sort(compare);
}

function otherThan(candidates: readonly string[], used: readonly string[]): string[] {
  return candidates.filter((candidate) => !used.includes(candidate));
}

function singleInstance(
  service: ServiceSpec,
  slot: ZoneHost,
  dependents: readonly string[],
  fleetZones: readonly string[],
): IndependenceFinding {
  const where = `${slot.zone}/${slot.host}`;
  const spare = otherThan(fleetZones, [slot.zone]);
  const fix =
    spare.length > 0
      ? `run ${service.name} with at least 2 replicas and add ${spare[0]} to its placement, so they sit in different zones`
      : `run ${service.name} with at least 2 replicas, placed in a second zone`;
  if (dependents.length >= 2) {
    return {
      severity: "critical",
      kind: "shared-single-dependency",
      service: service.name,
      message: `${dependents.join(", ")} all depend on ${service.name}, which runs one instance (${where}): losing it takes them down together, however redundant they are`,
      fix,
    };
  }
  if (dependents.length === 1) {
    return {
      severity: "warning",
      kind: "single-instance",
      service: service.name,
      message: `${dependents[0]} depends on ${service.name}, which runs one instance (${where}): losing ${slot.zone} or ${slot.host} takes both down`,
      fix,
    };
  }
  return {
    severity: "info",
    kind: "single-instance",
    service: service.name,
    message: `${service.name} runs one instance (${where}): no redundancy`,
    fix,
  };
}

function zoneSpread(
  service: ServiceSpec,
  slots: readonly ZoneHost[],
  fleetZones: readonly string[],
): IndependenceFinding | null {
  const perZone = new Map<string, number>();
  for (const slot of slots) perZone.set(slot.zone, (perZone.get(slot.zone) ?? 0) + 1);
  const zones = uniqueSorted([...perZone.keys()]);
  const n = slots.length;
  const spare = otherThan(fleetZones, zones);
  if (zones.length === 1) {
    const zone = zones[0]!;
    return {
      severity: "critical",
      kind: "single-zone",
      service: service.name,
      message: `all ${n} replicas of ${service.name} run in ${zone}: losing ${zone} takes ${service.name} down`,
      fix:
        spare.length > 0
          ? `add ${spare.join(", ")} to ${service.name}'s placement so its replicas span zones`
          : `add a second zone to the fleet and place ${service.name}'s replicas in both`,
    };
  }
  // The busiest zone (ties: by name) decides: lose it and the rest must carry everything.
  let busiest = zones[0]!;
  for (const zone of zones) if (perZone.get(zone)! > perZone.get(busiest)!) busiest = zone;
  const inBusiest = perZone.get(busiest)!;
  if (inBusiest * 2 <= n) return null;
  return {
    severity: "warning",
    kind: "single-zone",
    service: service.name,
    message: `${inBusiest} of ${n} replicas of ${service.name} run in ${busiest}: losing it leaves ${count(n - inBusiest, "replica")} to carry all of ${service.name}'s load`,
    fix: balanceFix(service.name, n, zones, spare),
  };
}

/** The smallest concrete change that puts at most half the replicas in any zone. */
function balanceFix(name: string, n: number, zones: readonly string[], spare: readonly string[]): string {
  if (Math.ceil(n / zones.length) * 2 <= n) {
    return `list ${name}'s zones evenly in its placement (${zones.join(", ")} in turn), at most ${Math.ceil(n / zones.length)} of ${n} replicas per zone`;
  }
  if (spare.length > 0) {
    return `add ${spare[0]} to ${name}'s placement so no zone holds more than half of its replicas`;
  }
  return `run ${n + 1} replicas of ${name}, listed evenly over ${zones.join(", ")}, so no zone holds more than half`;
}

function singleHost(service: ServiceSpec, host: string, fleetHosts: readonly string[]): IndependenceFinding {
  const spare = otherThan(fleetHosts, [host]);
  return {
    severity: "critical",
    kind: "single-host",
    service: service.name,
    message: `all ${service.replicas} replicas of ${service.name} run on ${host}: losing ${host} takes ${service.name} down`,
    fix:
      spare.length > 0
        ? `place ${service.name}'s replicas on more than one host (e.g. add ${spare[0]})`
        : `add a second host to the fleet and place ${service.name}'s replicas on both`,
  };
}

/**
 * Traffic priorities as the data plane applies them (listed groups, then the placement zones not
 * listed); a backup group running on a host of the primary group fails with it.
 */
function backupSharesHosts(service: ServiceSpec, slots: readonly ZoneHost[]): IndependenceFinding[] {
  const listed = service.traffic.priorities.flat();
  const unlisted = uniqueSorted(slots.map((slot) => slot.zone).filter((zone) => !listed.includes(zone)));
  const groups = [...service.traffic.priorities, ...(unlisted.length > 0 ? [unlisted] : [])]
    .map((zones) => ({ zones, slots: slots.filter((slot) => zones.includes(slot.zone)) }))
    .filter((group) => group.slots.length > 0);
  const [primary, ...backups] = groups;
  if (primary === undefined) return [];
  const primaryHosts = new Set(primary.slots.map((slot) => slot.host));
  const findings: IndependenceFinding[] = [];
  for (const backup of backups) {
    const shared = uniqueSorted(
      backup.slots.map((slot) => slot.host).filter((host) => primaryHosts.has(host)),
    );
    if (shared.length === 0) continue;
    findings.push({
      severity: "critical",
      kind: "backup-shares-domain",
      service: service.name,
      message: `${service.name}'s backup zones ${backup.zones.join(", ")} run on ${shared.join(", ")}, as its primary zones ${primary.zones.join(", ")} do: the backup fails with the primary`,
      fix: `place ${service.name}'s replicas in ${backup.zones.join(", ")} on hosts its primary zones do not use`,
    });
  }
  return findings;
}
