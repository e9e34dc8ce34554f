/**
 * The decision core's input: everything known at one instant, as plain data. Built by the
 * controller from the driver, the prober and the store; never read from the world by `decide`.
 */

import type { ExitInfo } from "../drivers/driver.ts";
import type { InstanceHealth } from "../observe/health.ts";
import type { FleetSpec } from "../spec/model.ts";
import type { Reason } from "./reasons.ts";
import type { SlotState } from "./slotState.ts";

/**
 * - `running`: the process exists (its health says whether it is any good)
 * - `exited`: it was started and is gone; `lastExit` says how
 * - `absent`: never started by this fleet (or stopped on purpose)
 */
export type RuntimeState = "running" | "exited" | "absent";

export interface ObservedInstance {
  name: string;
  service: string;
  slot: number;
  /** Release version this instance runs (or ran). */
  release: string;
  runtime: RuntimeState;
  /** Null unless running. */
  health: InstanceHealth | null;
  startedAt: number | null;
  lastExit: ExitInfo | null;
  /**
   * Set when the controller stopped this instance on purpose to replace it: the reason the next
   * start carries ("replacing an unhealthy instance", "new release").
   */
  replacing?: Reason;
}

export interface Snapshot {
  now: number;
  fleet: FleetSpec;
  /** Every instance the controller knows of, including ones no longer in the spec. */
  instances: ObservedInstance[];
  slots: ReadonlyMap<string, SlotState>;
  /** Instances with an action under way: decide leaves them alone. */
  busy: ReadonlySet<string>;
  /**
   * Which slots should run which release, per service (two banks during a progressive deploy).
   * A service absent here runs `release` in slots 0..replicas-1.
   */
  targets?: ReadonlyMap<string, readonly BankTarget[]>;
}

export interface BankTarget {
  bank: 0 | 1;
  release: string;
  slots: readonly number[];
}
