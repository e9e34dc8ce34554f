/**
 * Bench knobs, from the environment. The defaults are the fleet of issue 15's report: 3 services ×
 * 20 instances of a bare node:http server, readiness and liveness HTTP probes every 1 s (120
 * probes/s), measured over 60 s once every instance has been ready for 10 s.
 */

import { flag, positiveInt } from "../common/envOptions.ts";

export interface ProbesBenchOptions {
  services: number;
  replicas: number;
  /** Readiness and liveness interval; a list runs one fleet per interval (fixed vs per-probe cost). */
  intervalsMs: number[];
  /** Probe timeout (each try). */
  timeoutMs: number;
  /** Wait after every instance is ready, before the window opens (start-up work settles). */
  settleMs: number;
  /** The measurement window. */
  windowMs: number;
  /** Runs of each interval, each on a fresh fleet. */
  runs: number;
  /** Sample the controller with the V8 profiler over the window (through its inspector). */
  profile: boolean;
  /** The checkout whose `bin/homeostat.js` runs (default: this one): measure a commit in a copy. */
  repo: string | null;
  /** Extra Node flags for the controller process alone (e.g. --max-semi-space-size=1), space-separated. */
  controllerFlags: string[];
  /** API port; instance ports from `basePort` (3 services × 2 × 20 = 120 ports by default). */
  apiPort: number;
  basePort: number;
}

function intervals(env: NodeJS.ProcessEnv): number[] {
  const text = env.PROBES_INTERVAL_MS?.trim();
  if (text === undefined || text === "") return [1000];
  return text
    .split(",")
    .map((part) => positiveInt({ PROBES_INTERVAL_MS: part.trim() }, "PROBES_INTERVAL_MS", 1000));
}

export function readOptions(env: NodeJS.ProcessEnv = process.env): ProbesBenchOptions {
  const services = positiveInt(env, "PROBES_SERVICES", 3);
  const replicas = positiveInt(env, "PROBES_REPLICAS", 20);
  if (services * replicas < 60 && !flag(env, "PROBES_ALLOW_SMALL", false)) {
    throw new Error(
      `PROBES_SERVICES × PROBES_REPLICAS = ${services * replicas}: the bench needs at least 60 real instances (PROBES_ALLOW_SMALL=1 for a quick try)`,
    );
  }
  return {
    services,
    replicas,
    intervalsMs: intervals(env),
    timeoutMs: positiveInt(env, "PROBES_TIMEOUT_MS", 500),
    settleMs: positiveInt(env, "PROBES_SETTLE_S", 10) * 1000,
    windowMs: positiveInt(env, "PROBES_WINDOW_S", 60) * 1000,
    runs: positiveInt(env, "PROBES_RUNS", 1),
    profile: flag(env, "PROBES_PROFILE", false),
    repo: env.PROBES_REPO?.trim() ? env.PROBES_REPO.trim() : null,
    controllerFlags: (env.PROBES_CONTROLLER_FLAGS ?? "").split(/\s+/).filter((flag) => flag !== ""),
    apiPort: positiveInt(env, "PROBES_API_PORT", 17590),
    basePort: positiveInt(env, "PROBES_BASE_PORT", 18500),
  };
}
