/**
 * Time as the controller's loops see it: a clock and one-shot timers. The real one is `Date.now`
 * and `setTimeout`; the simulation (`src/drivers/sim/virtualClock.ts`) runs the same controller,
 * prober and failover code in virtual time, so 10,000 instances can be driven through hours of
 * failures in seconds without a socket or a wall-clock sleep.
 */

/** A scheduled call that can be cancelled; cancelling one that already ran does nothing. */
export interface Timer {
  cancel(): void;
}

export interface Scheduler {
  /** Epoch ms. */
  now(): number;
  /**
   * Call `fn` once, `delayMs` from now. `keepAlive: false` (the default) does not keep a real
   * process alive for this timer alone (an unref'd timer), which is what a background probe wants.
   */
  setTimer(delayMs: number, fn: () => void, options?: { keepAlive?: boolean }): Timer;
}

/** Date.now and setTimeout. */
export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimer(delayMs, fn, options) {
    const timer = setTimeout(fn, delayMs);
    if (options?.keepAlive !== true) timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

/** A promise resolved `delayMs` from now by `scheduler` (never keeps a real process alive). */
export function sleep(scheduler: Scheduler, delayMs: number): Promise<void> {
  return new Promise((resolve) => {
    scheduler.setTimer(delayMs, resolve);
  });
}
