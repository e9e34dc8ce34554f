/**
 * Virtual time for the simulation: a {@link Scheduler} whose clock moves only when told to. Timers
 * sit in a binary heap by due time (then by creation order, so equal times run in the order they
 * were set); {@link VirtualClock.advance} runs them in order, moving `now` to each one's due time,
 * and lets the promise chains they start run to their end (a macrotask turn) before it looks at
 * the next due time. The controller, its prober and its failover manager then behave as they would
 * over that much wall-clock time, without sleeping and with no socket.
 */

import { setImmediate as turn } from "node:timers/promises";
import type { Scheduler, Timer } from "../../lib/scheduler.ts";

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Scheduler {
  #now: number;
  #seq = 0;
  readonly #heap: Entry[] = [];
  /** Timers run since the clock was made (the simulation's own work, for the bench's record). */
  fired = 0;

  /** `start`: the epoch ms the clock shows first. */
  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  setTimer(delayMs: number, fn: () => void): Timer {
    const entry: Entry = { at: this.#now + Math.max(0, delayMs), seq: this.#seq++, fn, cancelled: false };
    this.#push(entry);
    return {
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Timers set and not yet run or cancelled (cancelled ones leave the heap when they come due). */
  get pending(): number {
    return this.#heap.length;
  }

  /**
   * Move the clock forward by `ms`, running every timer that comes due on the way, each at its own
   * time, and the work each one starts. Ends with `now` exactly `ms` later.
   */
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    await turn();
    for (;;) {
      const next = this.#heap[0];
      if (next === undefined || next.at > until) break;
      this.#now = Math.max(this.#now, next.at);
      // Everything due at this instant, then one turn for the promises they started.
      while (this.#heap.length > 0 && this.#heap[0]!.at <= this.#now) {
        const entry = this.#pop()!;
        if (entry.cancelled) continue;
        this.fired++;
        entry.fn();
      }
      await turn();
    }
    this.#now = until;
    await turn();
  }

  /** Let pending promise chains run without moving the clock. */
  async settle(): Promise<void> {
    await this.advance(0);
  }

  #less(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #pop(): Entry | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.#less(heap[left]!, heap[smallest]!)) smallest = left;
      if (right < heap.length && this.#less(heap[right]!, heap[smallest]!)) smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest]!, heap[i]!];
      i = smallest;
    }
    return top;
  }
}
