/**
 * Polling instead of sleeping: wait until a condition holds, or fail after a deadline.
 */

export interface WaitForOptions {
  /** Give up after this long (default 10 s: the test machine is slow and noisy). */
  timeoutMs?: number;
  /** Time between polls (default 20 ms). */
  intervalMs?: number;
  /** Said in the timeout error, e.g. "instance ready". */
  what?: string;
}

/**
 * Poll `condition` until it returns a value other than `false`, `null` or `undefined`, and
 * return that value. Throws if the deadline passes first (with the last error the condition
 * threw, if any).
 */
export async function waitFor<T>(
  condition: () => T | false | null | undefined | Promise<T | false | null | undefined>,
  options: WaitForOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 20;
  const deadline = performance.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value !== false && value !== null && value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (performance.now() >= deadline) {
      const what = options.what ?? "condition";
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`, { cause: lastError });
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
