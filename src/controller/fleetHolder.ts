/**
 * The applied fleet spec as a value that changes while the controller runs (`homeostat apply`):
 * components read `current()` when they need the spec, or subscribe to be told of a new one,
 * instead of keeping the spec they were built with.
 */

import type { FleetSpec } from "../spec/model.ts";

/** Told of each new applied spec, with the one it replaces. */
export type FleetListener = (next: FleetSpec, previous: FleetSpec) => void;

export class FleetHolder {
  #current: FleetSpec;
  readonly #listeners: FleetListener[] = [];

  constructor(initial: FleetSpec) {
    this.#current = initial;
  }

  /** The spec in force now. */
  current(): FleetSpec {
    return this.#current;
  }

  /** Be told of every later change, in subscription order. */
  subscribe(listener: FleetListener): void {
    this.#listeners.push(listener);
  }

  /**
   * Make `next` the spec in force and tell every subscriber (synchronously, in order): after this
   * returns, every component reads the new spec.
   */
  set(next: FleetSpec): void {
    const previous = this.#current;
    this.#current = next;
    for (const listener of this.#listeners) listener(next, previous);
  }
}
