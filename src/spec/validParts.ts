import type { z } from "zod";
import type { CheckedService, CheckSubject } from "./checks.ts";
import {
  type DefaultTrafficInput,
  defaultTrafficSchema,
  type FleetInput,
  hostsSchema,
  NAME_PATTERN,
  type ProbesInput,
  probesSchema,
  type ServiceInput,
  serviceSchema,
  type TrafficInput,
  trafficSchema,
} from "./schema.ts";

/** The cross-field view of a fleet that passed the schema. */
export function subjectOfValidFleet(fleet: FleetInput): CheckSubject {
  return {
    hosts: fleet.hosts,
    hostsKnown: true,
    defaultProbes: fleet.defaults?.probes,
    defaultTraffic: fleet.defaults?.traffic,
    services: Object.entries(fleet.services).map(([name, service]) => checkedService(name, service)),
    declaredServices: Object.keys(fleet.services),
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
      versions: releases === undefined ? undefined : Object.keys(releases),
      probes: fields.probes ?? validProbes(rawService?.probes),
      traffic: fields.traffic ?? validTraffic(trafficSchema, rawService?.traffic),
    });
  }
  return {
    hosts: hosts.success ? hosts.data : undefined,
    hostsKnown: hosts.success,
    defaultProbes: validProbes(asRecord(asRecord(root.defaults)?.probes)),
    defaultTraffic: validTraffic(defaultTrafficSchema, asRecord(root.defaults)?.traffic),
    services,
    declaredServices: declared.map(([name]) => name),
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
  };
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
