/**
 * Where a probe is aimed: the instance's address and the context an exec probe runs in.
 */
export interface ProbeTarget {
  /** Instances listen on loopback only. */
  host: "127.0.0.1";
  /** The instance's assigned port (a check's own `port` overrides it). */
  port: number;
  /** Working directory for exec probes (the release's `cwd`). */
  cwd: string;
  /** Extra environment for exec probes, laid over the controller's own environment. */
  env: Record<string, string>;
}

/** What one probe run found. Never an exception: failures are data. */
export interface ProbeOutcome {
  ok: boolean;
  /** Wall time of the run, measured on the monotonic clock. */
  durationMs: number;
  /** Why it failed: "status 503", "timeout after 300ms", "connect ECONNREFUSED", "exit 1". */
  detail?: string;
}

/** A failure detail for an I/O error: "connect ECONNREFUSED", "read ECONNRESET", "socket hang up". */
export function describeIoError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { code, syscall } = error as NodeJS.ErrnoException;
  if (code !== undefined && syscall !== undefined) return `${syscall} ${code}`;
  return error.message || code || error.name;
}

export function timeoutDetail(timeoutMs: number): string {
  return `timeout after ${timeoutMs}ms`;
}

/** Ends a probe run; only the first call counts. */
export type Finish = (ok: boolean, detail?: string) => void;

/**
 * The scaffolding every probe shares: resolve exactly once, with the first outcome the probe
 * reports or with a timeout failure after `timeoutMs`, and measure the duration. `start` begins
 * the I/O and returns what to do once the run is settled (close a socket, kill a process group).
 * The timeout resolves the probe even if a hook throws (the exception is rethrown on its own, like
 * one from any timer callback), so a run can never outlive its timeout by more than one turn of
 * the event loop (given to an answer that arrived while the process was stalled); if `start` throws, the
 * promise rejects at once (the caller reports it as a failed probe).
 */
export function settleOnce(
  timeoutMs: number,
  start: (finish: Finish) => { cleanup?: () => void; onTimeout?: () => void },
): Promise<ProbeOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let settled = false;
    let hooks: { cleanup?: () => void; onTimeout?: () => void } = {};
    const finish: Finish = (ok, detail) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const durationMs = performance.now() - started;
      resolve(detail === undefined ? { ok, durationMs } : { ok, durationMs, detail });
      runHook(hooks.cleanup);
    };
    const timer = setTimeout(() => {
      // libuv runs expired timers before it reads sockets: after a stall of this process (a busy
      // machine, a long pass) the answer may be in the kernel already, unread. One turn of the
      // loop (setImmediate runs after the I/O phase) lets it settle the probe first; a probe whose
      // answer has not come fails then, as before.
      setImmediate(() => {
        if (settled) return;
        runHook(hooks.onTimeout);
        finish(false, timeoutDetail(timeoutMs));
      });
    }, timeoutMs);
    try {
      hooks = start(finish);
    } catch (error) {
      clearTimeout(timer);
      throw error;
    }
    // Settled from inside `start`: its cleanup was not known yet when it settled.
    if (settled) runHook(hooks.cleanup);
  });
}

/** Run a probe's hook; its exception must neither stop the probe from settling nor vanish. */
function runHook(hook: (() => void) | undefined): void {
  if (hook === undefined) return;
  try {
    hook();
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}
