/**
 * Observed health of an instance, as the probes see it. Pure types; the state machine that
 * moves between them is in `healthMachine.ts`.
 */

export type ProbeKind = "startup" | "readiness" | "liveness";

export interface ProbeResult {
  kind: ProbeKind;
  ok: boolean;
  /** When the probe started (epoch ms). */
  at: number;
  durationMs: number;
  /** Why it failed: "timeout after 500ms", "connect ECONNREFUSED", "status 503", "exit 1". */
  detail?: string;
}

/**
 * - `starting`: running, startup probe not yet passed (or no readiness result yet)
 * - `ready`: readiness passing (or no readiness probe and startup passed)
 * - `unready`: alive but readiness failing
 * - `unhealthy`: liveness or startup failed past its threshold: the process must be replaced
 */
export type HealthState = "starting" | "ready" | "unready" | "unhealthy";

export interface InstanceHealth {
  state: HealthState;
  /** Epoch ms of the last observation that found the instance good (ready or passing liveness). */
  lastGoodAt: number | null;
  /** Epoch ms when `state` last changed. */
  since: number;
  /** Human-readable reason for the current state, e.g. "liveness: 3 consecutive failures (timeout after 500ms)". */
  reason: string;
}
