/**
 * Test kit for the policies: an injectable clock, seeded randomness, and a way to observe whether
 * a promise has settled without waiting on wall-clock time.
 */

export interface FakeClock {
  now: () => number;
  advance: (ms: number) => void;
  set: (ms: number) => void;
}

/** A clock that only moves when told to (starts at `start` ms). */
export function fakeClock(start = 1_000_000): FakeClock {
  let t = start;
  return {
    now: () => t,
    advance: (ms) => {
      t += ms;
    },
    set: (ms) => {
      t = ms;
    },
  };
}

export { seededRandom } from "../../helpers/seededRandom.ts";

export interface Tracked<T> {
  settled: boolean;
  value: T | undefined;
  error: unknown;
}

/** Follow a promise's settlement; read the fields after {@link flush}. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const tracked: Tracked<T> = { settled: false, value: undefined, error: undefined };
  promise.then(
    (value) => {
      tracked.settled = true;
      tracked.value = value;
    },
    (error: unknown) => {
      tracked.settled = true;
      tracked.error = error;
    },
  );
  return tracked;
}

/** Let every pending promise callback run (one macrotask turn: not a sleep, no clock involved). */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
