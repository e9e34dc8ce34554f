import { durationMs } from "./duration.ts";
import type { Problem } from "./problem.ts";
import type { DefaultTrafficInput, TrafficInput } from "./schema.ts";
import { didYouMean } from "./suggest.ts";
import { TRAFFIC_DEFAULTS } from "./traffic.ts";
import type { PathSegment } from "./yamlSource.ts";

type AnyTrafficInput = TrafficInput | DefaultTrafficInput;

/** What the traffic rules need to know about one service. */
export interface TrafficCheckedService {
  name: string;
  traffic: TrafficInput | undefined;
  /** The keys of `releases`, when known. */
  versions: readonly string[] | undefined;
  /** Its placement zones in placement order, when the placement could be resolved. */
  zones: readonly string[] | undefined;
  /** Whether it has a front `port` (without one, its traffic settings are unused). */
  hasPort: boolean;
}

const DEFAULTS_PATH: PathSegment[] = ["defaults", "traffic"];

/**
 * The rules of the `traffic` mappings that relate several values: `localZone` xor `priorities`,
 * zones listed once and placed, weights naming releases with one above 0, and durations in a
 * sensible order once the service's settings are merged over `defaults.traffic`.
 */
export function checkTraffic(
  defaults: DefaultTrafficInput | undefined,
  services: readonly TrafficCheckedService[],
): Problem[] {
  const problems: Problem[] = [];
  if (defaults !== undefined) {
    problems.push(...checkLocalityShape(defaults, DEFAULTS_PATH));
    problems.push(...checkOrders(undefined, defaults, DEFAULTS_PATH, "defaults.traffic"));
  }
  for (const service of services) {
    const path = ["services", service.name, "traffic"];
    const own = service.traffic;
    if (own !== undefined) {
      problems.push(...checkLocalityShape(own, path));
      problems.push(...checkWeights(own.weights, service.versions, [...path, "weights"]));
      problems.push(...checkOrders(defaults, own, path, "defaults.traffic"));
    }
    problems.push(...checkLocalityZones(service, defaults, path));
  }
  return problems;
}

function checkLocalityShape(traffic: AnyTrafficInput, path: PathSegment[]): Problem[] {
  const problems: Problem[] = [];
  if (traffic.localZone !== undefined && traffic.priorities !== undefined) {
    problems.push({
      path: [...path, "priorities"],
      target: "key",
      message: `set either "localZone" or "priorities", not both: localZone: ${traffic.localZone} means priorities [[${traffic.localZone}], <the other zones>]`,
    });
  }
  const seen = new Set<string>();
  traffic.priorities?.forEach((priority, i) => {
    priority.forEach((zone, j) => {
      if (seen.has(zone)) {
        problems.push({
          path: [...path, "priorities", i, j],
          target: "value",
          message: `zone "${zone}" is listed twice: a zone has one priority`,
        });
      }
      seen.add(zone);
    });
  });
  return problems;
}

/**
 * Every zone of the locality the service uses must be one of its placement zones. A locality
 * inherited from `defaults` is judged only for services with a front port (it is unused
 * otherwise), and reported where `defaults` says it, naming the service.
 */
function checkLocalityZones(
  service: TrafficCheckedService,
  defaults: DefaultTrafficInput | undefined,
  servicePath: PathSegment[],
): Problem[] {
  const zones = service.zones;
  if (zones === undefined) return [];
  const own = service.traffic;
  const ownsLocality = own?.localZone !== undefined || own?.priorities !== undefined;
  if (!ownsLocality && !service.hasPort) return [];
  const source = ownsLocality ? own : defaults;
  const path = ownsLocality ? servicePath : DEFAULTS_PATH;
  if (source === undefined) return [];
  const where = `service "${service.name}" is placed in ${zones.join(", ")}`;
  const inherited = ownsLocality
    ? ""
    : ` (inherited from defaults.traffic: set traffic.localZone or traffic.priorities on service "${service.name}")`;
  const unknown = (zone: string, at: PathSegment[]): Problem => ({
    path: at,
    target: "value",
    message: `zone "${zone}" is not a placement zone${ownsLocality ? didYouMean(zone, zones) : ""}: ${where}${inherited}`,
  });
  const problems: Problem[] = [];
  if (source.localZone !== undefined) {
    if (!zones.includes(source.localZone)) problems.push(unknown(source.localZone, [...path, "localZone"]));
  } else {
    source.priorities?.forEach((priority, i) => {
      priority.forEach((zone, j) => {
        if (!zones.includes(zone)) problems.push(unknown(zone, [...path, "priorities", i, j]));
      });
    });
  }
  return problems;
}

function checkWeights(
  weights: Record<string, number> | undefined,
  versions: readonly string[] | undefined,
  path: PathSegment[],
): Problem[] {
  if (weights === undefined) return [];
  const problems: Problem[] = [];
  if (versions !== undefined) {
    for (const version of Object.keys(weights)) {
      if (!versions.includes(version)) {
        problems.push({
          path: [...path, version],
          target: "key",
          message: `unknown release "${version}"${didYouMean(version, versions)} (releases: ${versions.join(", ")})`,
        });
      }
    }
  }
  if (!Object.values(weights).some((weight) => weight > 0)) {
    problems.push({
      path,
      target: "value",
      message: "give at least one release a weight above 0: otherwise no request has anywhere to go",
    });
  }
  return problems;
}

/** Two durations that must not be in the wrong order, read from a merged traffic mapping. */
interface OrderRule {
  shorter: { name: string; path: PathSegment[]; defaultMs: number };
  longer: { name: string; path: PathSegment[]; defaultMs: number };
  why: string;
}

const ORDER_RULES: readonly OrderRule[] = [
  {
    shorter: {
      name: "perTryTimeout",
      path: ["retries", "perTryTimeout"],
      defaultMs: TRAFFIC_DEFAULTS.retries.perTryTimeoutMs,
    },
    longer: {
      name: "requestTimeout",
      path: ["requestTimeout"],
      defaultMs: TRAFFIC_DEFAULTS.requestTimeoutMs,
    },
    why: "one attempt cannot outlast the whole request",
  },
  {
    shorter: {
      name: "baseEjectionTime",
      path: ["outlierDetection", "baseEjectionTime"],
      defaultMs: TRAFFIC_DEFAULTS.outlier.baseEjectionMs,
    },
    longer: {
      name: "maxEjectionTime",
      path: ["outlierDetection", "maxEjectionTime"],
      defaultMs: TRAFFIC_DEFAULTS.outlier.maxEjectionMs,
    },
    why: "ejections grow from base to max",
  },
  {
    shorter: {
      name: "backoff.initial",
      path: ["retries", "backoff", "initial"],
      defaultMs: TRAFFIC_DEFAULTS.retries.backoff.initialMs,
    },
    longer: {
      name: "backoff.max",
      path: ["retries", "backoff", "max"],
      defaultMs: TRAFFIC_DEFAULTS.retries.backoff.maxMs,
    },
    why: "retry delays grow from initial to max",
  },
  {
    shorter: {
      name: "hedging.minDelay",
      path: ["hedging", "minDelay"],
      defaultMs: TRAFFIC_DEFAULTS.hedging.minDelayMs,
    },
    longer: {
      name: "hedging.maxDelay",
      path: ["hedging", "maxDelay"],
      defaultMs: TRAFFIC_DEFAULTS.hedging.maxDelayMs,
    },
    why: "the automatic hedge delay is kept between min and max",
  },
];

/**
 * The order rules on `own` merged over `defaults`. Only a value `own` sets can be wrong here:
 * an inconsistency entirely inside `defaults` is reported once, at `defaults`. A shorter value
 * left to its built-in default never is: it is capped at the longer one.
 */
function checkOrders(
  defaults: AnyTrafficInput | undefined,
  own: AnyTrafficInput,
  path: PathSegment[],
  defaultsName: string,
): Problem[] {
  const problems: Problem[] = [];
  for (const rule of ORDER_RULES) {
    const ownShorter = read(own, rule.shorter.path);
    const ownLonger = read(own, rule.longer.path);
    if (ownShorter === undefined && ownLonger === undefined) continue;
    const setShorter = ownShorter ?? read(defaults, rule.shorter.path);
    // The built-in default of the shorter one is capped at the longer one (see resolveTraffic).
    if (setShorter === undefined) continue;
    const shorterMs = setShorter;
    const longerMs = ownLonger ?? read(defaults, rule.longer.path) ?? rule.longer.defaultMs;
    if (shorterMs <= longerMs) continue;
    const origin = (ownValue: number | undefined, side: OrderRule["longer"]) =>
      ownValue !== undefined
        ? ""
        : read(defaults, side.path) !== undefined
          ? ` (from ${defaultsName})`
          : " (the default)";
    const blamed = ownShorter !== undefined ? rule.shorter : rule.longer;
    problems.push({
      path: [...path, ...blamed.path],
      target: "value",
      message: `${rule.shorter.name} ${shorterMs}ms${origin(ownShorter, rule.shorter)} is longer than ${rule.longer.name} ${longerMs}ms${origin(ownLonger, rule.longer)}: ${rule.why}`,
    });
  }
  return problems;
}

/** The duration at `path` inside a traffic mapping, in milliseconds. */
function read(traffic: AnyTrafficInput | undefined, path: readonly PathSegment[]): number | undefined {
  let value: unknown = traffic;
  for (const segment of path) {
    if (typeof value !== "object" || value === null) return undefined;
    value = (value as Record<PathSegment, unknown>)[segment];
  }
  return typeof value === "string" || typeof value === "number" ? durationMs(value) : undefined;
}
