/** The work given to {@link withTimeout} did not finish in time. Deliberately not a HomeostatError: application code catches it. */
export class TimeoutError extends Error {
  readonly timeoutMs: number;

  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = "TimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Run `fn` with a deadline. `fn` receives an AbortSignal that is aborted when the deadline passes
 * (reason: the {@link TimeoutError}) or when `outerSignal` aborts (reason: the outer reason), so
 * the inner work — a socket, a child request — is actually cancelled, not just abandoned.
 *
 * The returned promise settles as soon as either happens, even if `fn` ignores its signal: it
 * rejects with the TimeoutError, or with the outer signal's reason. A later settlement of `fn`
 * is then swallowed. If `outerSignal` is already aborted, `fn` is not called.
 *
 * Uses a real timer (`setTimeout`), cleared as soon as the promise settles.
 */
export function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  ms: number,
  outerSignal?: AbortSignal,
): Promise<T> {
  if (outerSignal?.aborted) return Promise.reject(outerSignal.reason);
  const inner = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const finish = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      outerSignal?.removeEventListener("abort", onOuterAbort);
      return true;
    };
    const onOuterAbort = (): void => {
      if (!finish()) return;
      inner.abort(outerSignal?.reason);
      reject(outerSignal?.reason);
    };
    const timer = setTimeout(() => {
      if (!finish()) return;
      const error = new TimeoutError(ms);
      inner.abort(error);
      reject(error);
    }, ms);
    outerSignal?.addEventListener("abort", onOuterAbort, { once: true });

    let work: Promise<T>;
    try {
      work = fn(inner.signal);
    } catch (error) {
      // A synchronous throw is a rejection like any other.
      work = Promise.reject(error);
    }
    work.then(
      (value) => {
        if (finish()) resolve(value);
      },
      (error: unknown) => {
        if (finish()) reject(error);
      },
    );
  });
}
