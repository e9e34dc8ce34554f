/**
 * The environment an instance runs with: the controller's own environment, then the release's
 * `env`, then the Homeostat variables (which win, so a release cannot lie about its identity).
 *
 * The directory of the Node.js running the controller goes first on PATH (as `npm run` does with
 * `node_modules/.bin`), so a release whose command is `node` gets the same Node as Homeostat
 * however the controller was started. A release that sets PATH itself keeps its own.
 */

import { delimiter, dirname } from "node:path";
import type { InstanceLaunch } from "../driver.ts";

/** Build the child environment for `launch` on top of `base` (normally `process.env`). */
export function buildLaunchEnv(
  launch: InstanceLaunch,
  base: NodeJS.ProcessEnv = process.env,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(base)) {
    if (value !== undefined) env[key] = value;
  }
  const nodeDir = dirname(process.execPath);
  env.PATH = env.PATH ? `${nodeDir}${delimiter}${env.PATH}` : nodeDir;
  Object.assign(env, launch.release.env);
  env.PORT = String(launch.port);
  env.HOMEOSTAT_INSTANCE = launch.instance;
  env.HOMEOSTAT_SERVICE = launch.service;
  env.HOMEOSTAT_RELEASE = launch.release.version;
  env.HOMEOSTAT_ZONE = launch.placement.zone;
  env.HOMEOSTAT_HOST = launch.placement.host;
  // `config` is optional in the fleet file; an absent config is handed over as JSON `null`.
  env.HOMEOSTAT_CONFIG = JSON.stringify(launch.release.config ?? null);
  return env;
}
