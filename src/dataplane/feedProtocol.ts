/**
 * The config feed between the controller and the data plane: newline-delimited JSON over a Unix
 * socket in the state directory (owner-only). The controller pushes complete, versioned snapshots
 * (never deltas, so a reconnect is one message); the data plane acknowledges the version it applied
 * and reports its state, statistics and events back. The `haproxy` engine (src/dataplane/haproxy/)
 * serves the same messages. See docs/data-plane.md#the-config-feed.
 */

import { z } from "zod";

/** Bumped when a message changes incompatibly; both sides refuse a peer that speaks another. */
export const FEED_PROTOCOL_VERSION = 1;

const endpointSchema = z.object({
  instance: z.string().min(1),
  service: z.string().min(1),
  release: z.string().min(1),
  zone: z.string(),
  host: z.string(),
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});

const sharesSchema = z.record(z.string(), z.number().min(0).max(1));

const sheddingSchema = z.object({
  default: z.number().min(0).max(1),
  sheddable: z.number().min(0).max(1),
});

const faultSchema = z.object({
  id: z.string(),
  createdAt: z.number(),
  service: z.string().optional(),
  instance: z.string().optional(),
  zone: z.string().optional(),
  fault: z.discriminatedUnion("kind", [
    z.object({ kind: z.literal("latency"), ms: z.number() }),
    z.object({ kind: z.literal("error"), status: z.number(), rate: z.number().optional() }),
    z.object({ kind: z.literal("reset"), rate: z.number().optional() }),
    z.object({ kind: z.literal("blackhole") }),
  ]),
});

/** What one service's listener needs: where it listens, its policies and who gets its traffic. */
export const serviceSnapshotSchema = z.object({
  name: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** The service's resolved `traffic` settings, validated by the controller from the fleet file. */
  traffic: z.record(z.string(), z.unknown()),
  /**
   * Who gets the traffic. Null only from a controller that adopted a running data plane and has
   * not judged the instances yet: keep the endpoints served now (none when there are none).
   */
  endpoints: z.array(endpointSchema).nullable(),
  /**
   * Release weights, zone shares and failover shedding: null is "none". Absent only from a
   * controller that has not decided them yet (it adopted a running data plane and has not restored
   * its rollouts and failovers): keep what is served.
   */
  weights: z.record(z.string(), z.number()).nullable().optional(),
  zoneShares: sharesSchema.nullable().optional(),
  shedding: sheddingSchema.nullable().optional(),
  /**
   * Instance slots the controller may use for the service (both banks): an engine that needs
   * its servers declared up front (haproxy) declares that many, so a scale-up needs no reload.
   */
  slots: z.number().int().min(1).optional(),
});

const storeMemberSchema = z.object({
  member: z.string().min(1),
  address: z.string().min(1),
  port: z.number().int().min(1).max(65535),
});

/**
 * One replicated store's stable endpoint (src/dataplane/redisEndpoint.ts): where it listens, the
 * primary it forwards to (null: none now, new connections wait) and the epoch of that topology;
 * a data plane never applies a lower epoch than it serves. Added for issue 16 (redis helper).
 */
export const storeSnapshotSchema = z.object({
  name: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  sentinel: z
    .object({ port: z.number().int().min(1).max(65535), announce: z.enum(["endpoint", "primary"]) })
    .nullable(),
  epoch: z.number().int().min(0),
  primary: storeMemberSchema.nullable(),
  replicas: z.array(storeMemberSchema),
});
export type StoreSnapshot = z.infer<typeof storeSnapshotSchema>;

/** Everything the data plane serves with. Complete: applying it replaces whatever came before. */
export const snapshotSchema = z.object({
  /** Strictly increasing per controller lifetime; ordered across lifetimes by `issuedAt`. */
  version: z.number().int().min(1),
  /** Epoch ms when the controller built it. */
  issuedAt: z.number(),
  /**
   * The issuing controller's fencing token (its lease, src/store/leadership.ts): the data plane
   * refuses a snapshot whose token is below the highest it has seen. Absent from controllers
   * before leases.
   */
  fencingToken: z.number().int().min(0).optional(),
  fleet: z.string(),
  controller: z.object({ pid: z.number().int(), startedAt: z.number() }),
  services: z.array(serviceSnapshotSchema),
  /**
   * Injected faults. Never persisted by the data plane and dropped when the controller is gone:
   * an experiment stops when its experimenter does.
   */
  faults: z.array(faultSchema),
  /**
   * Replicated stores' endpoints (optional, additive). Absent: keep the stores served now (a
   * controller that has not loaded its topology yet); present: exactly these.
   */
  stores: z.array(storeSnapshotSchema).optional(),
});

export type Snapshot = z.infer<typeof snapshotSchema>;
export type ServiceSnapshot = z.infer<typeof serviceSnapshotSchema>;

const ringSecondSchema = z.tuple([z.number(), z.number(), z.number(), z.array(z.number())]);

/** Decision windows (see WindowsExport in src/traffic/stats/trafficStats.ts): whole seconds. */
export const windowsSchema = z.object({
  services: z.record(
    z.string(),
    z.object({
      requests: z.array(ringSecondSchema),
      criticality: z.array(z.tuple([z.number(), z.number(), z.number(), z.number()])),
      releases: z.record(z.string(), z.array(ringSecondSchema)),
      instances: z.record(z.string(), z.array(ringSecondSchema)),
    }),
  ),
});

/** An event the data plane wants recorded (ejections, returns, panic, its own life). */
export const feedEventSchema = z.object({
  at: z.number(),
  type: z.string(),
  reason: z.string(),
  message: z.string(),
  service: z.string().optional(),
  data: z.record(z.string(), z.unknown()).optional(),
});
export type FeedEvent = z.infer<typeof feedEventSchema>;

/** Who the data plane is and what it serves with, as it tells a controller that connects. */
export const dataPlaneIdentitySchema = z.object({
  pid: z.number().int(),
  /** Kernel start time of the process (see src/lib/procStat.ts), for adoption checks. */
  startTime: z.string().nullable(),
  startedAt: z.number(),
  protocol: z.number().int(),
  /** The version of the snapshot it serves with, 0 when it has none. */
  appliedVersion: z.number().int(),
  /** When that snapshot was issued by a controller, null when none. */
  appliedIssuedAt: z.number().nullable(),
  /** Where the snapshot came from: the feed, the persisted file at start, or none yet. */
  source: z.enum(["feed", "persisted", "none"]),
  /** Since when no controller has been connected (null while one is). */
  controllerLostAt: z.number().nullable(),
  /** How many processes took over the listeners before this one, by planned handover. */
  generation: z.number().int(),
  /** Which worker of the fleet's data plane this is. */
  worker: z.number().int().min(0),
  /** The highest fencing token it has taken orders from (null: none yet). */
  fencingToken: z.number().int().nullable().optional(),
});
export type DataPlaneIdentity = z.infer<typeof dataPlaneIdentitySchema>;

/** Controller → data plane. */
export const controllerMessageSchema = z.discriminatedUnion("type", [
  /** The first message on a connection: this controller takes over the feed (the previous one is cut). */
  z.object({
    type: z.literal("attach"),
    protocol: z.number().int(),
    controller: z.object({ pid: z.number().int(), startedAt: z.number() }),
    /** A controller whose token is below the highest seen is refused: it was deposed. */
    fencingToken: z.number().int().min(0).optional(),
  }),
  z.object({ type: z.literal("snapshot"), snapshot: snapshotSchema }),
  /** Start a successor that takes over the listeners, then drain and exit (planned restart, upgrade). */
  z.object({ type: z.literal("handover"), id: z.string() }),
  /** Stop listening, drain, exit (the fleet is being stopped). */
  z.object({ type: z.literal("stop") }),
  /** Ask for the Prometheus text of the data plane's own counters. */
  z.object({ type: z.literal("metrics"), id: z.string() }),
  /**
   * Read-only look from anyone who can reach the socket, attached or not (`homeostat dataplane
   * status` while no controller runs): answered with an `inspection`, then the connection ends.
   */
  z.object({ type: z.literal("inspect") }),
]);
export type ControllerMessage = z.infer<typeof controllerMessageSchema>;

/** Data plane → controller. */
export const dataPlaneMessageSchema = z.discriminatedUnion("type", [
  z.object({ type: z.literal("hello"), identity: dataPlaneIdentitySchema }),
  z.object({
    type: z.literal("ack"),
    version: z.number().int(),
    ok: z.boolean(),
    error: z.string().optional(),
  }),
  z.object({
    type: z.literal("report"),
    at: z.number(),
    identity: dataPlaneIdentitySchema,
    /** Per service: the listener's state (endpoints with in-flight counts and ejections, admission…). */
    services: z.record(z.string(), z.record(z.string(), z.unknown())),
    /** The windows' seconds that changed since the last report (all of them in the first one). */
    windows: windowsSchema,
    events: z.array(feedEventSchema),
    /** Per store: what its endpoint forwards to and at which epoch (optional, additive: issue 16). */
    stores: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  }),
  z.object({
    type: z.literal("handover-started"),
    id: z.string(),
    successorPid: z.number().int(),
  }),
  z.object({ type: z.literal("handover-failed"), id: z.string(), error: z.string() }),
  z.object({ type: z.literal("metrics"), id: z.string(), contentType: z.string(), text: z.string() }),
  z.object({
    type: z.literal("inspection"),
    identity: dataPlaneIdentitySchema,
    services: z.record(z.string(), z.record(z.string(), z.unknown())),
    stores: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
  }),
]);
export type DataPlaneMessage = z.infer<typeof dataPlaneMessageSchema>;
