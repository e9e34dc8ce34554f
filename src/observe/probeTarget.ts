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
