import type { z } from "zod";
import type { CheckedService, CheckSubject } from "./checks.ts";
import type { ReleaseRecordInput } from "./releaseChecks.ts";
import {
  type CapacityInput,
  capacitySchema,
  type DefaultTrafficInput,
  type DeployInput,
  defaultTrafficSchema,
  deploySchema,
  type FailoverInput,
  type FleetInput,
  failoverSchema,
  hostsSchema,
  type MigrationInput,
  migrationSchema,
  type ProbesInput,
  probesSchema,
  releaseRequiresSchema,
  type ServiceInput,
  serviceSchema,
  type TrafficInput,
  trafficSchema,
} from "./schema.ts";
import { NAME_PATTERN } from "./schemaParts.ts";

/** The cross-field view of a fleet that passed the schema. */
export function subjectOfValidFleet(fleet: FleetInput): CheckSubject {
  return {
    hosts: fleet.hosts,
    hostsKnown: true,
    defaultProbes: fleet.defaults?.probes,
    defaultTraffic: fleet.defaults?.traffic,
    defaultDeploy: fleet.defaults?.deploy,
    defaultCapacity: fleet.defaults?.capacity,
    failover: fleet.failover,
    services: Object.entries(fleet.services).map(([name, service]) => ({
      ...checkedService(name, service),
      dependsOn: service.dependsOn ?? [],
    })),
    declaredServices: Object.keys(fleet.services),
    declaredDatastores: Object.keys(fleet.datastores ?? {}),
    deniedServices: (fleet.security?.deniedReleases ?? []).map((denied) => denied.service),
  };
}

/**
 * The cross-field view of a fleet that failed the schema: every field that is valid on its own
 * (down to single probes), so the cross-field rules can still report what they find.
 */
export function subjectOfInvalidFleet(data: unknown): CheckSubject {
  const root = asRecord(data) ?? {};
  const hosts = hostsSchema.optional().safeParse(root.hosts);
  const declared = Object.entries(asRecord(root.services) ?? {});
  const services: CheckedService[] = [];
  for (const [name, raw] of declared) {
    if (!NAME_PATTERN.test(name)) continue;
    const fields = validFields(serviceSchema, raw);
    const rawService = asRecord(raw);
    const releases = asRecord(rawService?.releases);
    services.push({
      ...checkedService(name, fields),
      // Absent means none; present but invalid means unknown (and nothing is judged against it).
      dependsOn: fields.dependsOn ?? (rawService?.dependsOn === undefined ? [] : undefined),
      versions: releases === undefined ? undefined : Object.keys(releases),
      probes: fields.probes ?? validProbes(rawService?.probes),
      traffic: fields.traffic ?? validTraffic(trafficSchema, rawService?.traffic),
      deploy: fields.deploy ?? validDeploy(rawService?.deploy),
      capacity: fields.capacity ?? validCapacity(rawService?.capacity),
      releases: releases === undefined ? undefined : validReleaseRecords(releases),
    });
  }
  const defaults = asRecord(root.defaults);
  const denied = asRecord(root.security)?.deniedReleases;
  return {
    hosts: hosts.success ? hosts.data : undefined,
    hostsKnown: hosts.success,
    defaultProbes: validProbes(asRecord(defaults?.probes)),
    defaultTraffic: validTraffic(defaultTrafficSchema, defaults?.traffic),
    defaultDeploy: validDeploy(defaults?.deploy),
    defaultCapacity: validCapacity(defaults?.capacity),
    failover: validFailover(root.failover),
    services,
    declaredServices: declared.map(([name]) => name),
    declaredDatastores: Object.keys(asRecord(root.datastores) ?? {}),
    deniedServices: Array.isArray(denied)
      ? denied.map((entry) => {
          const service = asRecord(entry)?.service;
          return typeof service === "string" && NAME_PATTERN.test(service) ? service : undefined;
        })
      : [],
  };
}

function checkedService(name: string, service: Partial<ServiceInput>): CheckedService {
  return {
    name,
    release: service.release,
    versions: service.releases === undefined ? undefined : Object.keys(service.releases),
    replicas: service.replicas,
    basePort: service.basePort,
    port: service.port,
    placement: service.placement,
    probes: service.probes,
    dependsOn: service.dependsOn,
    traffic: service.traffic,
    deploy: service.deploy,
    capacity: service.capacity,
    releases: service.releases,
  };
}

function validDeploy(raw: unknown): DeployInput | undefined {
  return asRecord(raw) === undefined ? undefined : validFields(deploySchema, raw);
}

function validCapacity(raw: unknown): CapacityInput | undefined {
  return asRecord(raw) === undefined ? undefined : validFields(capacitySchema, raw);
}

/**
 * The valid fields of `failover`. When one of the two shares is written but invalid, neither is
 * kept: their order cannot be judged (comparing with the default would report a value nobody wrote).
 */
function validFailover(raw: unknown): FailoverInput | undefined {
  const record = asRecord(raw);
  if (record === undefined) return undefined;
  const valid = validFields(failoverSchema, record);
  const shares = ["downShare", "degradedShare"] as const;
  if (shares.some((key) => record[key] !== undefined && valid[key] === undefined)) {
    for (const key of shares) delete valid[key];
  }
  return valid;
}

/** Of each release, the requirements and the migrations that are valid on their own. */
function validReleaseRecords(releases: Record<string, unknown>): Record<string, ReleaseRecordInput> {
  const records: Record<string, ReleaseRecordInput> = {};
  for (const [version, raw] of Object.entries(releases)) {
    const release = asRecord(raw);
    const requires = asRecord(release?.requires);
    const migrations = release?.migrations;
    records[version] = {
      requires: requires === undefined ? undefined : validFields(releaseRequiresSchema, requires),
      migrations: Array.isArray(migrations) ? migrations.map(validMigration) : undefined,
    };
  }
  return records;
}

function validMigration(raw: unknown): MigrationInput | undefined {
  const parsed = migrationSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

function validProbes(raw: unknown): ProbesInput | undefined {
  return asRecord(raw) === undefined ? undefined : validFields(probesSchema, raw);
}

/** The valid fields of a traffic mapping (so one bad value does not hide the other problems). */
function validTraffic(schema: typeof trafficSchema, raw: unknown): TrafficInput | undefined;
function validTraffic(schema: typeof defaultTrafficSchema, raw: unknown): DefaultTrafficInput | undefined;
function validTraffic(schema: typeof trafficSchema | typeof defaultTrafficSchema, raw: unknown) {
  return asRecord(raw) === undefined
    ? undefined
    : validFields(schema as z.ZodObject<z.core.$ZodLooseShape>, raw);
}

/** Each field of an object schema validated on its own; the invalid ones are left out. */
function validFields<Shape extends z.core.$ZodLooseShape>(
  schema: z.ZodObject<Shape>,
  raw: unknown,
): Partial<z.output<z.ZodObject<Shape>>> {
  const record = asRecord(raw) ?? {};
  const valid: Record<string, unknown> = {};
  for (const [key, fieldSchema] of Object.entries(schema.shape)) {
    const parsed = (fieldSchema as z.ZodType).safeParse(record[key]);
    if (parsed.success && parsed.data !== undefined) valid[key] = parsed.data;
  }
  return valid as Partial<z.output<z.ZodObject<Shape>>>;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
