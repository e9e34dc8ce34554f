/**
 * Worlds for the rollback planner: a service ("checkout") with release records, live facts and a
 * fleet, built as plain objects. Times are minutes after T0 so tests read as a timeline.
 */

import { type RollbackContext, rollbackContext } from "../../../src/decide/rollback/context.ts";
import type {
  AppliedMigration,
  LiveFacts,
  ReleaseHistoryEntry,
  ReleaseStatus,
} from "../../../src/decide/rollback/types.ts";
import type {
  DatastoreSpec,
  FleetSpec,
  MigrationSpec,
  ReleaseSpec,
  SecuritySpec,
  ServiceSpec,
} from "../../../src/spec/model.ts";
import {
  makeFleet,
  makeRelease,
  type ReleaseOverrides,
  type ServiceOverrides,
} from "../../helpers/fleetFixture.ts";

export const SERVICE = "checkout";
export const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
export const minutes = (n: number): number => T0 + n * 60_000;

export interface RecordOptions extends ReleaseOverrides {
  /** Minutes after T0. */
  at: number;
  status?: ReleaseStatus;
  args?: string[];
  command?: string;
  /** Default `{}`: records differ only where a test says so. */
  config?: unknown;
  service?: string;
}

/** One release record of checkout (same command, args, env and config as any other unless set); a `proven` record gets evidence (12 000 requests, 0.2 % errors, p99 84 ms). */
export function record(version: string, options: RecordOptions): ReleaseHistoryEntry {
  const service = options.service ?? SERVICE;
  const spec: ReleaseSpec = makeRelease(service, version, options);
  if (options.args !== undefined) spec.args = options.args;
  if (options.command !== undefined) spec.command = options.command;
  // The shared fixture stamps the version into env and config; here records are identical unless
  // a test spells out the difference, so drift findings are exactly the ones under test.
  spec.env = { ...options.env };
  spec.config = options.config === undefined ? {} : options.config;
  const status = options.status ?? "superseded";
  const deployedAt = minutes(options.at);
  const proven = status === "proven";
  const provenAt = proven ? deployedAt + 600_000 : null;
  return {
    service,
    version,
    spec,
    contentHash: `hash-${version}`,
    status,
    deployedAt,
    provenAt,
    evidence:
      provenAt === null
        ? null
        : { windowMs: 600_000, requests: 12_000, errorRate: 0.002, p99Ms: 84, at: provenAt },
  };
}

/** A migration applied by `checkout <version>` at minute `at`. */
export function applied(
  version: string,
  at: number,
  migration: MigrationSpec,
  service = SERVICE,
): AppliedMigration {
  return { service, version, migration, at: minutes(at) };
}

export interface WorldOptions {
  history: ReleaseHistoryEntry[];
  /** Version of the running release; default: the newest record. */
  current?: string;
  schemas?: Record<string, number>;
  servedApis?: Record<string, string | undefined>;
  dependents?: LiveFacts["dependents"];
  appliedMigrations?: AppliedMigration[];
  security?: Partial<SecuritySpec>;
  /** The fleet file's own lists (merged with the live ones by the planner). */
  fleetSecurity?: Partial<SecuritySpec>;
  datastores?: DatastoreSpec[];
  service?: Omit<ServiceOverrides, "name">;
  /** Minutes after T0; default: one minute after the newest record. */
  now?: number;
}

export interface World {
  service: ServiceSpec;
  fleet: FleetSpec;
  history: ReleaseHistoryEntry[];
  facts: LiveFacts;
}

export function world(options: WorldOptions): World {
  const newest = [...options.history].sort((a, b) => b.deployedAt - a.deployedAt)[0];
  if (newest === undefined) throw new Error("fixture: a world needs at least one record");
  const current =
    options.current === undefined
      ? newest
      : options.history.find((entry) => entry.version === options.current);
  if (current === undefined) throw new Error(`fixture: no record ${options.current}`);
  const versions = [...new Set(options.history.map((entry) => entry.version))];
  const fleet = makeFleet({
    services: [{ name: SERVICE, versions, release: current.version, ...options.service }],
    datastores: options.datastores ?? [],
    security: options.fleetSecurity ?? {},
  });
  const service = fleet.services[0]!;
  const facts: LiveFacts = {
    now: options.now === undefined ? newest.deployedAt + 60_000 : minutes(options.now),
    current,
    schemas: options.schemas ?? {},
    servedApis: options.servedApis ?? {},
    dependents: options.dependents ?? [],
    appliedMigrations: options.appliedMigrations ?? [],
    security: {
      deniedReleases: options.security?.deniedReleases ?? [],
      revokedSecrets: options.security?.revokedSecrets ?? [],
    },
  };
  return { service, fleet, history: options.history, facts };
}

export function contextOf(w: World): RollbackContext {
  return rollbackContext(w);
}

/** The record of `version` in the world's history (the newest one). */
export function recordOf(w: World, version: string): ReleaseHistoryEntry {
  const found = [...w.history].reverse().find((entry) => entry.version === version);
  if (found === undefined) throw new Error(`fixture: no record ${version}`);
  return found;
}
