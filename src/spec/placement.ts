import type { ZoneHost } from "./model.ts";
import type { Problem } from "./problem.ts";
import type { HostsInput, ServiceInput } from "./schema.ts";
import { didYouMean } from "./suggest.ts";
import type { PathSegment } from "./yamlSource.ts";

type PlacementInput = NonNullable<ServiceInput["placement"]>;

/** Where slots run when neither the service nor the fleet says anything about hosts or zones. */
const LOCAL: ZoneHost = { zone: "local", host: "local" };

/**
 * Checks a service's `placement` against the declared hosts and resolves it to the list slots
 * are spread over (`placement[slot % length]`): one entry per host, ordered so that consecutive
 * slots go to different zones whenever there are several.
 *
 * - `hosts` listed: those hosts (each must be declared; with `zones` too, each must be in one of them);
 * - only `zones` listed: the declared hosts in those zones, or, when the fleet declares no hosts,
 *   one synthetic host `local-<zone>` per zone;
 * - nothing listed: every declared host, or a single `local` host in zone `local`.
 */
export function placeService(
  servicePath: readonly PathSegment[],
  placement: PlacementInput | undefined,
  declaredHosts: HostsInput | undefined,
): { placement: ZoneHost[]; problems: Problem[] } {
  const problems: Problem[] = [];
  const path = [...servicePath, "placement"];
  const hosts: ZoneHost[] = Object.entries(declaredHosts ?? {}).map(([host, { zone }]) => ({ zone, host }));
  const knownZones = unique(hosts.map((entry) => entry.zone));
  const zones = placement?.zones;
  const listedHosts = placement?.hosts;

  reportDuplicates(zones, [...path, "zones"], "zone", problems);
  reportDuplicates(listedHosts, [...path, "hosts"], "host", problems);

  if (zones !== undefined && hosts.length > 0) {
    zones.forEach((zone, index) => {
      if (!knownZones.includes(zone)) {
        problems.push({
          path: [...path, "zones", index],
          target: "value",
          message: `unknown zone "${zone}"${didYouMean(zone, knownZones)}: no declared host is in it (zones: ${knownZones.join(", ")})`,
        });
      }
    });
  }

  let chosen: ZoneHost[];
  if (listedHosts !== undefined) {
    chosen = [];
    listedHosts.forEach((host, index) => {
      const entry = hosts.find((candidate) => candidate.host === host);
      const itemPath = [...path, "hosts", index];
      if (entry === undefined) {
        const why =
          hosts.length === 0
            ? "the fleet declares no hosts"
            : `declared hosts: ${hosts.map((h) => h.host).join(", ")}`;
        const suggestion = didYouMean(
          host,
          hosts.map((h) => h.host),
        );
        problems.push({
          path: itemPath,
          target: "value",
          message: `unknown host "${host}"${suggestion} (${why})`,
        });
      } else if (zones !== undefined && !zones.includes(entry.zone)) {
        problems.push({
          path: itemPath,
          target: "value",
          message: `host "${host}" is in zone "${entry.zone}", which placement.zones does not list`,
        });
      } else if (!chosen.includes(entry)) {
        chosen.push(entry);
      }
    });
  } else if (zones !== undefined) {
    chosen =
      hosts.length > 0
        ? hosts.filter((entry) => zones.includes(entry.zone))
        : unique(zones).map((zone) => ({ zone, host: `local-${zone}` }));
  } else {
    chosen = hosts.length > 0 ? hosts : [LOCAL];
  }

  const zoneOrder = zones ?? knownZones;
  return { placement: spreadAcrossZones(chosen, zoneOrder), problems };
}

/** Round-robin across zones (in `zoneOrder`), then across hosts within a zone. */
export function spreadAcrossZones(entries: readonly ZoneHost[], zoneOrder: readonly string[]): ZoneHost[] {
  const byZone = new Map<string, ZoneHost[]>();
  for (const zone of zoneOrder) byZone.set(zone, []);
  for (const entry of entries) {
    const list = byZone.get(entry.zone);
    if (list === undefined) byZone.set(entry.zone, [entry]);
    else list.push(entry);
  }
  const queues = [...byZone.values()].filter((list) => list.length > 0);
  const spread: ZoneHost[] = [];
  for (let round = 0; spread.length < entries.length; round++) {
    for (const queue of queues) {
      const entry = queue[round];
      if (entry !== undefined) spread.push(entry);
    }
  }
  return spread;
}

function reportDuplicates(
  names: readonly string[] | undefined,
  path: readonly PathSegment[],
  what: string,
  problems: Problem[],
): void {
  names?.forEach((name, index) => {
    if (names.indexOf(name) !== index) {
      problems.push({
        path: [...path, index],
        target: "value",
        message: `${what} "${name}" is listed twice`,
      });
    }
  });
}

function unique<T>(values: readonly T[]): T[] {
  return [...new Set(values)];
}
