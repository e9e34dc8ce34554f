/**
 * The fleet file's top-level `stores` section: replicated stores Homeostat runs and fails over
 * itself (today `kind: redis`: a primary and N replicas of `redis-server`). Its schema lives here
 * and is mounted in `schema.ts` (so this file builds on `schemaParts.ts`, not on `schema.ts`),
 * its errors carry `file:line:col` like every other section's; `checkStores` holds the rules that
 * relate a store to the rest of the file (placement, ports) and `resolveStores` fills in the
 * defaults. See docs/fleet-spec.md#stores and docs/redis.md.
 */

import { z } from "zod";
import { DURATION_PATTERN, type DurationInput, durationMs, tryDurationMs } from "./duration.ts";
import type { ZoneHost } from "./model.ts";
import { placeService } from "./placement.ts";
import type { Problem } from "./problem.ts";
import { expected, expectedText, NAME_PATTERN, strict } from "./schemaParts.ts";
import type { PathSegment } from "./yamlSource.ts";

/** What a store's members run with when the file says nothing: see docs/redis.md#defaults. */
export const STORE_DEFAULTS = {
  command: "redis-server",
  detection: { intervalMs: 250, timeoutMs: 250, failures: 3 },
  minReplicasToWrite: 1,
  minReplicasMaxLagS: 1,
  maxLagOnFailoverBytes: 1024 * 1024,
  onLag: "refuse",
  persistence: "aof",
} as const;

/** How a store's members persist data (see docs/redis.md#persistence). */
export type StorePersistence = "aof" | "rdb" | "none";

/** One replicated store, resolved: every default filled in, durations in ms. */
export interface StoreSpec {
  name: string;
  kind: "redis";
  /** Replicas besides the primary: members are `${name}-0` .. `${name}-${replicas}`. */
  replicas: number;
  /** Member i listens on `127.0.0.1:(basePort + i)`. */
  basePort: number;
  /** The stable endpoint (data-plane process): a TCP forward to the current primary. */
  port: number;
  /** The Sentinel-compatible port, when served; `announce` says what address it gives out. */
  sentinel: { port: number; announce: "endpoint" | "primary" } | null;
  /** Members are spread over these (`placement[i % length]`), zones first, as service slots. */
  placement: ZoneHost[];
  /** The redis-server program (looked up on PATH). */
  command: string;
  /** Primary failure detection: a PING and a write probe every interval; `failures` in a row. */
  detection: { intervalMs: number; timeoutMs: number; failures: number };
  /** Redis `min-replicas-to-write` on the primary (0: off). */
  minReplicasToWrite: number;
  /** Redis `min-replicas-max-lag`, whole seconds. */
  minReplicasMaxLagS: number;
  /** A failover to a replica further behind than this (bytes of replication stream) follows `onLag`. */
  maxLagOnFailoverBytes: number;
  /** `refuse`: no automatic promotion past the bound (an operator decides); `warn`: promote, and say what is lost. */
  onLag: "refuse" | "warn";
  persistence: StorePersistence;
  /** Replica priority per member index (Redis semantics: lower is preferred, 0 never promoted). Default 100. */
  priorities: number[];
  /** Extra redis.conf directives, passed as `--key value`; never one Homeostat manages. */
  config: Record<string, string>;
}

/** Directives Homeostat sets itself: a store's `config` may not override them. */
export const MANAGED_DIRECTIVES = [
  "port",
  "bind",
  "dir",
  "replicaof",
  "slaveof",
  "daemonize",
  "min-replicas-to-write",
  "min-slaves-to-write",
  "min-replicas-max-lag",
  "min-slaves-max-lag",
  "replica-priority",
  "slave-priority",
  "appendonly",
  "appendfsync",
  "save",
  "pidfile",
  "logfile",
  "protected-mode",
] as const;

const SIZE_PATTERN = /^(\d+)(b|kb|mb|gb)?$/i;
const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

/** Bytes for a size accepted by the schema: an integer, or `"64kb"`, `"1mb"`. */
export function sizeBytes(input: string | number): number {
  if (typeof input === "number") return input;
  const match = SIZE_PATTERN.exec(input.trim());
  if (match === null) throw new Error(`not a size: ${JSON.stringify(input)}`);
  return Number(match[1]) * SIZE_UNITS[(match[2] ?? "b").toLowerCase()]!;
}

const portError = (min: number) => expected(`an integer port between ${min} and 65535`);
const port = (min: number) =>
  z.number(portError(min)).int(portError(min)).min(min, portError(min)).max(65535, portError(min));

const durationError = expected('a positive duration like "250ms" or "1s"');
const positiveDuration = z.union(
  [
    z
      .string(durationError)
      .regex(DURATION_PATTERN, durationError)
      .refine((value) => (tryDurationMs(value) ?? 1) >= 1, durationError),
    z.number(durationError).int(durationError).min(1, durationError),
  ],
  durationError,
);
const secondsError = expected('a whole number of seconds ≥ 1 like "1s" or "10s"');
const wholeSeconds = z.union(
  [
    z
      .string(secondsError)
      .regex(DURATION_PATTERN, secondsError)
      .refine((value) => {
        const ms = tryDurationMs(value);
        return ms !== undefined && ms >= 1000 && ms % 1000 === 0;
      }, secondsError),
    z.number(secondsError).int(secondsError).min(1000, secondsError).multipleOf(1000, secondsError),
  ],
  secondsError,
);
const sizeError = expected('a size in bytes: an integer, or like "64kb", "1mb"');
const size = z.union(
  [z.string(sizeError).regex(SIZE_PATTERN, sizeError), z.number(sizeError).int(sizeError).min(0, sizeError)],
  sizeError,
);
const countError = expected("an integer ≥ 0");
const count = z.number(countError).int(countError).min(0, countError);
const positiveError = expected("a positive integer");
const positive = z.number(positiveError).int(positiveError).min(1, positiveError);
const nameError = expected(
  'a name (lowercase letters, digits and "-", starting with a letter, at most 40 characters)',
);
const zoneName = z.string(nameError).regex(NAME_PATTERN, nameError);
const directiveError = expected('a redis.conf directive (lowercase letters, digits and "-")');
const valueError = expectedText("a string");

/** One store of `kind: redis`. */
export const redisStoreSchema = strict({
  kind: z
    .literal("redis", expected('"redis" (the only kind of store)'))
    .describe("What the store runs: redis."),
  replicas: positive.describe("Replicas besides the primary (members = replicas + 1)."),
  basePort: port(1024).describe("Member i listens on 127.0.0.1:(basePort + i)."),
  port: port(1024).describe("Stable endpoint: the data plane forwards it to the current primary."),
  sentinel: strict({
    port: port(1024).describe("Port answering SENTINEL get-master-addr-by-name and sentinels."),
    announce: z
      .enum(["endpoint", "primary"], expected('"endpoint" or "primary"'))
      .optional()
      .describe("The address handed out: the stable endpoint (default) or the primary member's own."),
  })
    .optional()
    .describe("A Sentinel-compatible port, so Sentinel-aware clients find the primary through Homeostat."),
  placement: strict({
    zones: z
      .array(zoneName, expected("a list of zone names"))
      .min(1, "list at least one zone")
      .optional()
      .describe("Zones to spread members over."),
    hosts: z
      .array(zoneName, expected("a list of host names"))
      .min(1, "list at least one host")
      .optional()
      .describe("Declared hosts to spread members over."),
  })
    .optional()
    .describe("Where members run; default: every declared host."),
  command: z
    .string(expected("a program name or path"))
    .min(1)
    .optional()
    .describe("The redis-server program. Default redis-server (on PATH)."),
  detection: strict({
    interval: positiveDuration.optional().describe("Time between two probes of each member. Default 250ms."),
    timeout: positiveDuration.optional().describe("Time before one probe fails. Default 250ms."),
    failures: positive.optional().describe("Failed probes in a row that make the primary failed. Default 3."),
  })
    .optional()
    .describe("How a failed primary is detected: PING plus a write probe."),
  minReplicasToWrite: count
    .optional()
    .describe("Redis min-replicas-to-write on the primary; 0 turns it off. Default 1."),
  minReplicasMaxLag: wholeSeconds
    .optional()
    .describe("Redis min-replicas-max-lag, whole seconds. Default 1s."),
  maxLagOnFailover: size
    .optional()
    .describe("Most replication stream a promoted replica may miss. Default 1mb."),
  onLag: z
    .enum(["refuse", "warn"], expected('"refuse" or "warn"'))
    .optional()
    .describe("Past maxLagOnFailover: refuse to promote (default) or promote and report the loss."),
  persistence: z
    .enum(["aof", "rdb", "none"], expected('"aof", "rdb" or "none"'))
    .optional()
    .describe("aof (appendfsync everysec, default), rdb (snapshots), none."),
  priorities: z
    .array(count, expected("a list of integers ≥ 0, one per member"))
    .optional()
    .describe("Replica priority per member (lower preferred, 0 never promoted). Default 100 each."),
  config: z
    .record(z.string().regex(/^[a-z][a-z0-9-]*$/), z.string(valueError), directiveError)
    .optional()
    .describe("Extra redis.conf directives (not those Homeostat manages)."),
});

/** The top-level `stores` mapping. */
export const storesSchema = z.record(z.string().regex(NAME_PATTERN), redisStoreSchema, {
  error: (issue) =>
    issue.code === "invalid_key"
      ? 'invalid store name: use lowercase letters, digits and "-", starting with a letter, at most 40 characters'
      : "expected a mapping of store names to stores",
});

export type StoreInput = z.output<typeof redisStoreSchema>;
export type StoresInput = z.output<typeof storesSchema>;

/** Member i of a store is named `${store}-${i}`. */
export function memberName(store: string, index: number): string {
  return `${store}-${index}`;
}

/**
 * The rules that relate stores to the rest of the file: placement against the declared hosts,
 * every port of a store against every other port of the file (service instance ranges and front
 * ports, other stores), priorities and config keys.
 */
export function checkStores(
  stores: StoresInput | undefined,
  hosts: Record<string, { zone: string }> | undefined,
  servicePorts: readonly { name: string; low: number; high: number }[],
): Problem[] {
  const problems: Problem[] = [];
  const uses: { owner: string; low: number; high: number }[] = servicePorts.map((s) => ({
    owner: `service "${s.name}"`,
    low: s.low,
    high: s.high,
  }));
  for (const [name, store] of Object.entries(stores ?? {})) {
    const path: PathSegment[] = ["stores", name];
    problems.push(...placeService(path, store.placement, hosts).problems);
    const members = store.replicas + 1;
    const mine: { what: string; low: number; high: number; at: PathSegment[] }[] = [
      {
        what: `member ports ${store.basePort}-${store.basePort + members - 1}`,
        low: store.basePort,
        high: store.basePort + members - 1,
        at: [...path, "basePort"],
      },
      { what: `endpoint port ${store.port}`, low: store.port, high: store.port, at: [...path, "port"] },
    ];
    if (store.sentinel !== undefined) {
      const p = store.sentinel.port;
      mine.push({ what: `sentinel port ${p}`, low: p, high: p, at: [...path, "sentinel", "port"] });
    }
    if (store.basePort + members - 1 > 65535) {
      problems.push({ path: [...path, "basePort"], target: "value", message: `member ports go past 65535` });
    }
    for (const use of mine) {
      const clash = uses.find((other) => use.low <= other.high && other.low <= use.high);
      if (clash !== undefined) {
        problems.push({
          path: use.at,
          target: "value",
          message: `${use.what} overlap${use.low === use.high ? "s" : ""} ports ${clash.low === clash.high ? clash.low : `${clash.low}-${clash.high}`} of ${clash.owner}`,
        });
      }
      uses.push({ owner: `store "${name}"`, low: use.low, high: use.high });
    }
    if (store.priorities !== undefined) {
      if (store.priorities.length !== members) {
        problems.push({
          path: [...path, "priorities"],
          target: "value",
          message: `list one priority per member: ${members} (the primary and ${store.replicas} replicas), not ${store.priorities.length}`,
        });
      } else if (store.priorities.every((p) => p === 0)) {
        problems.push({
          path: [...path, "priorities"],
          target: "value",
          message: "every member has priority 0 (never promoted): no failover could ever happen",
        });
      }
    }
    if (store.minReplicasToWrite !== undefined && store.minReplicasToWrite > store.replicas) {
      problems.push({
        path: [...path, "minReplicasToWrite"],
        target: "value",
        message: `${store.minReplicasToWrite} is more than the ${store.replicas} replicas: the primary would never accept a write`,
      });
    }
    for (const key of Object.keys(store.config ?? {})) {
      if ((MANAGED_DIRECTIVES as readonly string[]).includes(key)) {
        problems.push({
          path: [...path, "config", key],
          target: "key",
          message: `"${key}" is set by Homeostat (it manages ports, replication, fencing and persistence); use the store's own fields`,
        });
      }
    }
    const detection = store.detection;
    if (detection?.timeout !== undefined) {
      const timeout = durationMs(detection.timeout as DurationInput);
      const interval = durationMs(
        (detection.interval ?? STORE_DEFAULTS.detection.intervalMs) as DurationInput,
      );
      if (timeout > interval) {
        problems.push({
          path: [...path, "detection", "timeout"],
          target: "value",
          message: `timeout ${timeout}ms is longer than the interval ${interval}ms: probes would overlap`,
        });
      }
    }
  }
  return problems;
}

/** Every store with its defaults, in declaration order. */
export function resolveStores(
  stores: StoresInput | undefined,
  hosts: Record<string, { zone: string }> | undefined,
): StoreSpec[] {
  return Object.entries(stores ?? {}).map(([name, store]) => {
    const members = store.replicas + 1;
    return {
      name,
      kind: "redis",
      replicas: store.replicas,
      basePort: store.basePort,
      port: store.port,
      sentinel:
        store.sentinel === undefined
          ? null
          : { port: store.sentinel.port, announce: store.sentinel.announce ?? "endpoint" },
      placement: placeService(["stores", name], store.placement, hosts).placement,
      command: store.command ?? STORE_DEFAULTS.command,
      detection: {
        intervalMs: ms(store.detection?.interval, STORE_DEFAULTS.detection.intervalMs),
        timeoutMs: ms(store.detection?.timeout, STORE_DEFAULTS.detection.timeoutMs),
        failures: store.detection?.failures ?? STORE_DEFAULTS.detection.failures,
      },
      minReplicasToWrite: store.minReplicasToWrite ?? STORE_DEFAULTS.minReplicasToWrite,
      minReplicasMaxLagS:
        store.minReplicasMaxLag === undefined
          ? STORE_DEFAULTS.minReplicasMaxLagS
          : durationMs(store.minReplicasMaxLag) / 1000,
      maxLagOnFailoverBytes:
        store.maxLagOnFailover === undefined
          ? STORE_DEFAULTS.maxLagOnFailoverBytes
          : sizeBytes(store.maxLagOnFailover),
      onLag: store.onLag ?? STORE_DEFAULTS.onLag,
      persistence: store.persistence ?? STORE_DEFAULTS.persistence,
      priorities: store.priorities ?? Array.from({ length: members }, () => 100),
      config: { ...store.config },
    };
  });
}

function ms(value: DurationInput | undefined, fallback: number): number {
  return value === undefined ? fallback : durationMs(value);
}
