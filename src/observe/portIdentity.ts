/**
 * Instance identity: whose socket answers on an instance's port. Probes only prove that
 * *something* answers on 127.0.0.1:PORT; an instance counts as ready only when that listener
 * belongs to the instance's own process group. Pure types and verdicts; the local driver reads
 * `/proc` to find the listeners (`src/drivers/local/portOwner.ts`).
 */

import type { ServiceSpec } from "../spec/model.ts";

/** A process holding a listening TCP socket on the port. */
export interface PortHolder {
  pid: number;
  /** Its process group, or null when it could not be read (the process went away meanwhile). */
  pgid: number | null;
  /** Its command line (arguments joined by spaces, shortened), or `(unknown)`. */
  command: string;
}

/** Who listens on a port, as far as `/proc` shows. */
export type PortOwnership =
  /** The kernel's socket tables cannot be read (not Linux, no /proc): identity cannot be checked. */
  | { kind: "unavailable"; reason: string }
  /** No listening socket reachable at 127.0.0.1:PORT. */
  | { kind: "free" }
  /**
   * Listening sockets exist. `holders` are the processes found holding them; `unattributed`
   * counts sockets whose holder is not visible (a process of another user: its descriptors
   * cannot be read).
   */
  | { kind: "held"; holders: PortHolder[]; unattributed: number };

/** Whether an instance's port is its own. */
export type PortIdentity =
  /** Every listener on the port belongs to the instance's process group. */
  | { verdict: "ours" }
  /** Some listener belongs to another process (or to one Homeostat cannot see). */
  | { verdict: "foreign"; holders: PortHolder[]; unattributed: number }
  /** Nobody listens on the port right now. */
  | { verdict: "no-listener" }
  /** Identity cannot be checked here (no /proc): readiness falls back to the probes alone. */
  | { verdict: "unverifiable"; reason: string };

/** The verdict for an instance whose process group is `pgid`. */
export function judgePortIdentity(ownership: PortOwnership, pgid: number): PortIdentity {
  switch (ownership.kind) {
    case "unavailable":
      return { verdict: "unverifiable", reason: ownership.reason };
    case "free":
      return { verdict: "no-listener" };
    case "held": {
      const foreign = ownership.holders.filter((h) => h.pgid !== pgid);
      if (foreign.length === 0 && ownership.unattributed === 0 && ownership.holders.length > 0) {
        return { verdict: "ours" };
      }
      return { verdict: "foreign", holders: foreign, unattributed: ownership.unattributed };
    }
  }
}

/**
 * Whether `service`'s instances are reached on their own port: by the data plane (a front port)
 * or by a probe aimed at the assigned port. Only then is the port part of an instance's identity.
 */
export function servesOnItsPort(service: ServiceSpec): boolean {
  if (service.port !== undefined) return true;
  return [service.probes.startup, service.probes.readiness, service.probes.liveness].some(
    (probe) => probe !== undefined && probe.check.kind !== "exec" && probe.check.port === undefined,
  );
}

/** "pid 4242 (node foreign.js), pid 4243 (…)", or the unseen holder. */
export function describeHolders(holders: readonly PortHolder[], unattributed: number): string {
  const seen = holders.map((h) => `pid ${h.pid} (${h.command})`);
  if (unattributed > 0) seen.push("a process whose descriptors cannot be read (another user's?)");
  return seen.length === 0 ? "an unknown process" : seen.join(", ");
}

/** A driver that can tell whose socket answers on an instance's port. */
export interface PortIdentityChecker {
  /** The verdict for `instance`'s port now; `unverifiable` when the instance is not running. */
  portIdentity(instance: string, port: number): PortIdentity;
  /**
   * Before starting `instance`: resolves when no other process listens on `port`, else rejects
   * with HS_INSTANCE_PORT_HELD naming the holders.
   */
  ensurePortFree(instance: string, port: number): Promise<void>;
}

export function canCheckPortIdentity(driver: object): driver is PortIdentityChecker {
  const d = driver as Partial<PortIdentityChecker>;
  return typeof d.portIdentity === "function" && typeof d.ensurePortFree === "function";
}
