/**
 * Builds decision-core snapshots and observed instances for tests: plain data, no processes.
 */

import type { SlotState } from "../../src/decide/slotState.ts";
import type { ObservedInstance, Snapshot } from "../../src/decide/snapshot.ts";
import type { HealthState, InstanceHealth } from "../../src/observe/health.ts";
import { type FleetSpec, instanceName } from "../../src/spec/model.ts";

/** A fixed "now" so timings in tests read as small offsets. */
export const NOW = 1_700_000_000_000;

export function health(
  state: HealthState,
  options: Partial<Omit<InstanceHealth, "state">> = {},
): InstanceHealth {
  return {
    state,
    lastGoodAt: options.lastGoodAt ?? (state === "ready" ? NOW - 1_000 : null),
    since: options.since ?? NOW - 10_000,
    reason: options.reason ?? (state === "ready" ? "readiness: passing" : `${state}`),
  };
}

export interface InstanceOptions {
  release?: string;
  health?: InstanceHealth | null;
  startedAt?: number | null;
}

/** A running instance, ready unless `health` says otherwise. */
export function running(service: string, slot: number, options: InstanceOptions = {}): ObservedInstance {
  return {
    name: instanceName(service, slot),
    service,
    slot,
    release: options.release ?? "v1",
    runtime: "running",
    health: options.health === undefined ? health("ready") : options.health,
    startedAt: options.startedAt ?? NOW - 60_000,
    lastExit: null,
  };
}

export interface ExitOptions {
  release?: string;
  code?: number | null;
  signal?: string | null;
  at?: number;
}

/** An instance that was started and is gone. Defaults to "exited with code 1". */
export function exited(service: string, slot: number, options: ExitOptions = {}): ObservedInstance {
  return {
    name: instanceName(service, slot),
    service,
    slot,
    release: options.release ?? "v1",
    runtime: "exited",
    health: null,
    startedAt: NOW - 60_000,
    lastExit: {
      code: options.code === undefined ? 1 : options.code,
      signal: options.signal ?? null,
      at: options.at ?? NOW - 100,
    },
  };
}

export function absent(service: string, slot: number, release = "v1"): ObservedInstance {
  return {
    name: instanceName(service, slot),
    service,
    slot,
    release,
    runtime: "absent",
    health: null,
    startedAt: null,
    lastExit: null,
  };
}

/** Every slot of every service running its wanted release and ready. */
export function allReady(fleet: FleetSpec): ObservedInstance[] {
  return fleet.services.flatMap((service) =>
    Array.from({ length: service.replicas }, (_, slot) =>
      running(service.name, slot, { release: service.release }),
    ),
  );
}

export interface SnapshotOptions {
  fleet: FleetSpec;
  instances?: ObservedInstance[];
  slots?: SlotState[];
  busy?: string[];
  now?: number;
}

export function makeSnapshot(options: SnapshotOptions): Snapshot {
  return {
    now: options.now ?? NOW,
    fleet: options.fleet,
    instances: options.instances ?? [],
    slots: new Map((options.slots ?? []).map((s) => [s.instance, s])),
    busy: new Set(options.busy ?? []),
  };
}
