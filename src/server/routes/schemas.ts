/**
 * The zod schemas of the API's answers: the one source for the OpenAPI document's response
 * schemas and for the tests that check live answers against it.
 *
 * Small, settled records (events, incidents, journal entries, fault rules, zone shifts) are
 * schemed field by field. Large documents that grow with the product (the status document, the
 * data plane's traffic state, failover plans and state, rollback plans) are schemed by their
 * top-level required fields and allow more keys (`z.looseObject`): a field added by a later
 * change extends the answer without breaking a client or the document's tests, while a field
 * renamed or dropped does break them.
 */

import { z } from "zod";
import { brakesStatusSchema } from "./brakeSchemas.ts";

/** Epoch milliseconds. */
const epochMs = z.number().int().describe("epoch milliseconds");
const nullableEpochMs = epochMs.nullable();

// ---------------------------------------------------------------- store records

export const eventSchema = z
  .object({
    seq: z.number().int().min(1).describe("strictly increasing, never reused (resume with ?after=SEQ)"),
    at: epochMs,
    type: z.string().describe('what happened: "instance.started", "rollout.promoted", …'),
    service: z.string().optional(),
    instance: z.string().optional(),
    reason: z.string(),
    message: z.string(),
    data: z.unknown().optional(),
  })
  .meta({ id: "Event" });

export const incidentSchema = z
  .looseObject({
    id: z.number().int().min(1),
    service: z.string(),
    instance: z.string(),
    kind: z.string().describe('what was seen: "exited", "liveness-failed", …'),
    status: z.enum(["open", "closed"]),
    reason: z.string(),
    detectedAt: epochMs,
    lastGoodAt: nullableEpochMs,
    actionStartedAt: nullableEpochMs,
    mitigatedAt: nullableEpochMs,
    closedAt: nullableEpochMs,
    /** Added by the verification gate (issue 12, recovery): optional until every store has it. */
    stabilizedAt: nullableEpochMs.optional().describe("when the SLO had held over the stabilization window"),
    verifiedAt: nullableEpochMs.optional().describe("when the verification gate passed"),
    ttdMs: z.number().nullable().describe("time to detect: detectedAt - lastGoodAt"),
    ttrMs: z.number().nullable().describe("time to recover: mitigatedAt - detectedAt"),
    detail: z.string(),
  })
  .meta({ id: "Incident" });

/** One incident with its whole timeline (`GET /v1/incidents/:id`). */
export const incidentWithTimelineSchema = incidentSchema
  .extend({
    timeline: z.array(
      z.object({
        at: epochMs,
        phase: z.string().describe('"detected", "action-started", "mitigated", "stabilized", "verified", …'),
        detail: z.string(),
      }),
    ),
  })
  .meta({ id: "IncidentWithTimeline" });

export const journalSchema = z
  .object({
    id: z.number().int().min(1),
    at: epochMs,
    action: z.string(),
    target: z.string(),
    reason: z.string(),
    data: z.unknown().optional(),
    result: z.object({ at: epochMs, ok: z.boolean(), detail: z.string() }).nullable(),
    token: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe("the fencing token of the controller that wrote it (absent before leases)"),
  })
  .meta({ id: "JournalEntry" });

// ---------------------------------------------------------------- status

/**
 * A part's recovery state (issue 12: instances, services, zones, the fleet), with its reasons and
 * their stable codes. Optional where it appears, so a document from before it still validates.
 */
const recoveryStateSchema = z
  .looseObject({
    state: z.enum(["healthy", "degraded", "failing", "recovering", "recovered-unverified", "verified"]),
    reasons: z.array(z.string()),
    codes: z.array(z.string()).optional(),
  })
  .meta({ id: "RecoveryState" });

const instanceStatusSchema = z.looseObject({
  name: z.string(),
  service: z.string(),
  slot: z.number().int(),
  port: z.number().int(),
  zone: z.string(),
  host: z.string(),
  release: z.string().nullable(),
  state: z.enum(["ready", "starting", "unready", "unhealthy", "exited", "stopped", "stopping"]),
  reason: z.string(),
  since: nullableEpochMs,
  pid: z.number().int().nullable(),
  startedAt: nullableEpochMs,
  consecutiveFailures: z.number().int(),
  crashLoop: z.boolean(),
  nextStartAt: nullableEpochMs,
  openIncident: z.number().int().nullable(),
  recovery: recoveryStateSchema.optional(),
});

const serviceStatusSchema = z.looseObject({
  name: z.string(),
  release: z.string(),
  runningReleases: z.array(z.string()),
  replicas: z.number().int(),
  ready: z.number().int(),
  state: z.enum(["healthy", "degraded", "down", "rolling", "starting"]),
  warnings: z.array(z.string()),
  instances: z.array(instanceStatusSchema),
  recovery: recoveryStateSchema.optional(),
  gate: z
    .looseObject({
      passed: z.boolean(),
      converged: z.string(),
      slo: z.string(),
      invariants: z.string(),
      blocking: z
        .array(z.string())
        .optional()
        .describe("the details of the conditions that block, in order; empty when it passes"),
    })
    .optional()
    .describe("the verification gate now: what a recovery of this service waits for"),
  probes: z
    .looseObject({
      defaults: z
        .enum(["tcp", "process"])
        .nullable()
        .describe(
          "set when the fleet file declares no probe: tcp (a TCP connect on the instance port) or process (judged by its process alone)",
        ),
      startup: z.string().nullable(),
      readiness: z.string().nullable(),
      liveness: z.string().nullable(),
      startupBudgetMs: z
        .number()
        .int()
        .nullable()
        .describe("how long an instance may take to become ready before it is reported (instance.not-ready)"),
    })
    .optional()
    .describe("the probes in force, in words, and whether they are defaults"),
});

/** One security invariant that does not hold (docs/security-invariants.md). */
const brokenInvariantSchema = z.object({
  invariant: z.string().describe('stable name: "protected-path:GET /admin", "policy-hash:/policy"'),
  kind: z.enum(["protected-path", "policy-hash"]),
  instance: z.string().optional().describe("the instance that breaks it"),
  detail: z.string(),
  since: epochMs.describe("first seen broken"),
});

/** The verdict on one service's security invariants, as the verification gate reads it. */
export const invariantVerdictSchema = z
  .object({
    ok: z.boolean().describe("true only when every invariant was checked on every ready instance and holds"),
    checked: z
      .boolean()
      .describe("false while some ready instance could not be probed since the last change"),
    broken: z.array(brokenInvariantSchema),
    lastCheckedAt: nullableEpochMs.describe("the last complete probe round, null before the first"),
  })
  .meta({ id: "InvariantVerdict" });

export const dataPlaneStatusSchema = z
  .looseObject({
    mode: z.enum(["process", "in-process"]),
    pid: z.number().int().nullable(),
    connected: z.boolean(),
    pushedVersion: z.number().int(),
    appliedVersion: z.number().int(),
    appliedIssuedAt: nullableEpochMs,
    controllerLostAt: nullableEpochMs,
    generation: z.number().int(),
    lastReportAt: nullableEpochMs,
    restarts: z.number().int(),
    workers: z
      .array(
        z.looseObject({
          worker: z.number().int(),
          pid: z.number().int().nullable(),
          connected: z.boolean(),
          appliedVersion: z.number().int(),
          generation: z.number().int(),
          restarts: z.number().int(),
        }),
      )
      .optional(),
  })
  .meta({ id: "DataPlaneStatus" });

export const statusSchema = z
  .looseObject({
    fleet: z.looseObject({ name: z.string(), file: z.string() }),
    dataPlane: dataPlaneStatusSchema.optional(),
    controller: z.looseObject({
      pid: z.number().int(),
      startedAt: epochMs,
      apiPort: z.number().int(),
      stateDir: z.string(),
      now: epochMs,
    }),
    services: z.array(serviceStatusSchema),
    openIncidents: z.number().int().min(0),
    domains: z.array(
      z.looseObject({
        zone: z.string(),
        survivorPeakUtilization: z.number().nullable(),
        survivesLoss: z.boolean(),
        headroomRps: z.number(),
      }),
    ),
    staticStability: z.looseObject({
      ok: z.boolean(),
      warning: z.string().optional(),
      skipped: z.array(z.looseObject({ service: z.string(), reason: z.string() })),
    }),
    zones: z
      .array(z.looseObject({ zone: z.string(), recovery: recoveryStateSchema }))
      .optional()
      .describe("per zone: the worst recovery state of its instances, and its own"),
    recovery: recoveryStateSchema.optional().describe("the fleet's: the worst of every service and zone"),
    partial: z
      .array(
        z.looseObject({
          kind: z
            .string()
            .describe("mixed-releases, old-config, old-secrets, old-release, half-shifted-zone, …"),
          service: z.string().optional(),
          zone: z.string().optional(),
          instances: z.array(z.string()).optional(),
          detail: z.string(),
        }),
      )
      .optional()
      .describe("partial recoveries, named: never hidden behind a healthy summary"),
    invariants: z
      .record(z.string(), invariantVerdictSchema)
      .optional()
      .describe("per service that declares security invariants: their verdict now"),
    spec: z
      .looseObject({
        revision: z.number().int().min(1),
        hash: z.string(),
        file: z.string(),
        at: epochMs,
        who: z.string(),
        fileOnDisk: z.enum(["same", "differs", "missing", "unreadable"]),
        fileHash: z.string().nullable(),
        applying: z.number().int().nullable().describe("a newer revision still being applied"),
      })
      .optional()
      .describe("the applied spec revision, and whether the fleet file on disk still matches it"),
    leadership: z
      .looseObject({
        role: z.literal("leader"),
        store: z.enum(["sqlite", "postgres"]),
        location: z.string().describe("the state file, or the PostgreSQL store's address without password"),
        token: z.number().int().min(1).describe("this leader's fencing token"),
        holder: z.string(),
        expiresAt: epochMs
          .nullable()
          .describe("the lease's end by the store's clock; null: SQLite (no expiry)"),
        ttlMs: z.number().int().nullable(),
      })
      .optional()
      .describe("who leads the store and with which fencing token (docs/operations.md#several-controllers)"),
    brakes: brakesStatusSchema
      .optional()
      .describe(
        "automation brakes: paused or not (by whom, why, since), each limit and how close, held actions (docs/brakes.md)",
      ),
  })
  .meta({ id: "Status" });

// ---------------------------------------------------------------- traffic and faults

export const faultSchema = z
  .object({
    id: z.string(),
    createdAt: epochMs,
    service: z.string().optional(),
    instance: z.string().optional(),
    zone: z.string().optional(),
    fault: z.discriminatedUnion("kind", [
      z.object({ kind: z.literal("latency"), ms: z.number().int() }),
      z.object({ kind: z.literal("error"), status: z.number().int(), rate: z.number().optional() }),
      z.object({ kind: z.literal("reset"), rate: z.number().optional() }),
      z.object({ kind: z.literal("blackhole") }),
    ]),
  })
  .meta({ id: "Fault" });

/** One endpoint of a service's proxy: load, limits, and its outlier-detection state. */
const endpointTrafficSchema = z.looseObject({
  instance: z.string(),
  release: z.string(),
  zone: z.string(),
  port: z.number().int(),
  inFlight: z.number().int(),
  limit: z.number().describe("its share of the service's concurrency limit"),
  adaptiveLimit: z.number().nullable(),
  draining: z.boolean(),
  priority: z.number().int().nullable().describe("null for a draining copy"),
  ejected: z.boolean(),
  ejectedUntil: nullableEpochMs,
  consecutiveFailures: z.number().int(),
  timesEjected: z.number().int(),
});

/** One service's proxy as the data plane reports it (endpoints, balancer, shedding, limits, …). */
export const serviceTrafficSchema = z
  .looseObject({
    service: z.string(),
    port: z.number().int(),
    endpoints: z.array(endpointTrafficSchema),
    healthy: z.number().int(),
    members: z.number().int(),
    panic: z.boolean(),
    panicMode: z.string(),
    weights: z
      .record(z.string(), z.number())
      .nullable()
      .describe("the release weights in force; null: no split"),
    zoneShares: z
      .record(z.string(), z.number())
      .optional()
      .describe("zones shifted by a failover or failback: the share of their traffic each keeps (0..1)"),
    shedding: z.unknown(),
    requestsInFlight: z.number().int(),
    engine: z
      .enum(["embedded", "haproxy"])
      .optional()
      .describe("the data-plane engine serving the service (absent: embedded)"),
    haproxy: z
      .looseObject({
        pid: z.number().int().nullable(),
        reloads: z.number().int(),
        logLines: z.number().int(),
        unparsedLogLines: z.number().int(),
        commandsSent: z.number().int(),
        lastError: z.string().nullable(),
      })
      .optional()
      .describe(
        "the managed HAProxy (engine haproxy only): its pid, reloads, log lines received, Runtime API commands sent, last error",
      ),
  })
  .meta({ id: "ServiceTraffic" });

// ---------------------------------------------------------------- releases and rollbacks

const checkResultSchema = z.looseObject({
  name: z.string(),
  ok: z.boolean(),
  severity: z.enum(["ok", "warning", "blocking"]),
  detail: z.string(),
  findings: z.array(z.looseObject({ message: z.string() })),
});

export const rollbackPlanSchema = z
  .looseObject({
    service: z.string(),
    from: z.string(),
    to: z.string(),
    decision: z.enum(["rollback", "rollback-with-warnings", "refuse"]),
    checks: z.array(checkResultSchema),
    alternative: z
      .looseObject({
        kind: z.enum(["older-proven", "roll-forward"]),
        version: z.string(),
        baseVersion: z.string(),
        description: z.string(),
        checks: z.array(checkResultSchema),
      })
      .optional(),
    steps: z.array(z.string()),
    expectedDurationMs: z.number(),
  })
  .meta({ id: "RollbackPlan" });

/** A deploy (canary) or rollback in progress or done. */
export const rolloutSchema = z
  .looseObject({
    id: z.number().int(),
    service: z.string(),
    from: z.string(),
    to: z.string(),
    phase: z.string(),
    startedAt: epochMs,
  })
  .meta({ id: "Rollout" });

export const releasesSchema = z
  .looseObject({
    active: z.string(),
    history: z.array(
      z.looseObject({
        service: z.string(),
        version: z.string(),
        contentHash: z.string(),
        status: z.string(),
        deployedAt: epochMs,
        provenAt: nullableEpochMs,
      }),
    ),
    rollouts: z.array(z.unknown()),
  })
  .meta({ id: "Releases" });

// ---------------------------------------------------------------- failover

export const zoneShiftSchema = z
  .looseObject({
    zone: z.string(),
    phase: z.enum(["evacuating", "evacuated", "failing-back"]),
    share: z.number().min(0).max(1),
    trigger: z.enum(["automatic", "manual"]),
    reason: z.string(),
    startedAt: epochMs,
    lastStepAt: epochMs,
    failback: z.unknown(),
  })
  .meta({ id: "ZoneShift" });

export const failoverStateSchema = z
  .looseObject({
    automatic: z.boolean(),
    zones: z.array(
      z.looseObject({
        zone: z.string(),
        state: z.string(),
        healthyInstances: z.number().int(),
        totalInstances: z.number().int(),
        share: z.number(),
        shift: zoneShiftSchema.nullable(),
      }),
    ),
    services: z.array(z.looseObject({ service: z.string() })),
    lastAutomatedAt: nullableEpochMs,
  })
  .meta({ id: "FailoverState" });

export const failoverPlanSchema = z
  .looseObject({
    domain: z.string(),
    feasible: z.boolean(),
    summary: z.string(),
    steps: z.array(z.looseObject({ index: z.number().int(), shiftedPercent: z.number() })),
    targets: z.array(z.string()),
  })
  .meta({ id: "FailoverPlan" });

export const failoverCheckSchema = z
  .looseObject({
    findings: z.array(z.looseObject({ severity: z.enum(["critical", "warning", "info"]), kind: z.string() })),
    headroom: z.unknown(),
    requiredCapacityFactor: z.number(),
    skipped: z.array(z.looseObject({ service: z.string(), reason: z.string() })),
  })
  .meta({ id: "FailoverCheck" });

// ---------------------------------------------------------------- what a client reads

/*
 * The answers' types, inferred from the schemas above (`z.output`): what the CLI types its reads
 * with, so the CLI, the OpenAPI document and the response tests share one source. A loose object's
 * type lists its schemed fields and allows more (`[k: string]: unknown`): a client reads the
 * schemed ones.
 */
export type EventAnswer = z.output<typeof eventSchema>;
export type IncidentAnswer = z.output<typeof incidentSchema>;
export type IncidentWithTimelineAnswer = z.output<typeof incidentWithTimelineSchema>;
export type JournalAnswer = z.output<typeof journalSchema>;
export type InvariantVerdictAnswer = z.output<typeof invariantVerdictSchema>;
export type DataPlaneStatusAnswer = z.output<typeof dataPlaneStatusSchema>;
export type StatusAnswer = z.output<typeof statusSchema>;
export type ServiceStatusAnswer = StatusAnswer["services"][number];
export type FaultAnswer = z.output<typeof faultSchema>;
export type ServiceTrafficAnswer = z.output<typeof serviceTrafficSchema>;
export type RollbackPlanAnswer = z.output<typeof rollbackPlanSchema>;
export type RolloutAnswer = z.output<typeof rolloutSchema>;
export type ReleasesAnswer = z.output<typeof releasesSchema>;
export type ZoneShiftAnswer = z.output<typeof zoneShiftSchema>;
export type FailoverStateAnswer = z.output<typeof failoverStateSchema>;
export type FailoverPlanAnswer = z.output<typeof failoverPlanSchema>;
export type FailoverCheckAnswer = z.output<typeof failoverCheckSchema>;
