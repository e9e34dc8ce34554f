/**
 * A request's hedge deadline, on the proxy's shared deadline lists (one timer per distinct delay,
 * not one per request: see DeadlineList). When it passes, the hedge is sent from a `setImmediate`,
 * after the event loop's poll phase: after a pause of the proxy itself (GC, a busy loop) the timers
 * run before the sockets are read, and answers that already arrived would otherwise be hedged.
 */

import type { DeadlineEntry, DeadlineList } from "./deadlineList.ts";

/** The request a hedge timer works for. */
export interface HedgeOwner {
  /**
   * The hedge delay of attempt number `attempt` passed, and the poll phase since did not answer
   * it: hedge it, maybe (the owner checks it is still the attempt in progress).
   */
  onHedgeDue(attempt: number): void;
}

export class HedgeTimer implements DeadlineEntry {
  private readonly owner: HedgeOwner;
  /** The attempt (its number in the request) the timer is armed for. */
  attempt = 0;
  deadlineAt = 0;
  deadlinePrev: DeadlineEntry | null = null;
  deadlineNext: DeadlineEntry | null = null;
  deadlineList: DeadlineList | null = null;

  constructor(owner: HedgeOwner) {
    this.owner = owner;
  }

  /** Called by the deadline list. */
  onDeadline(): void {
    // An argument rather than a closure: nothing allocated per firing.
    setImmediate(fire, this.owner, this.attempt);
  }
}

function fire(owner: HedgeOwner, attempt: number): void {
  owner.onHedgeDue(attempt);
}
