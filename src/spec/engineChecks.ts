/**
 * The one rule of a fleet file that depends on the machine it is read on: a service whose traffic
 * goes through the `haproxy` engine needs the `haproxy` binary. Checked at `validate`, `diff`,
 * `up` and `apply`, so a missing binary is an error at the line that asks for it, never a data
 * plane that fails to start later.
 */

import type { Problem } from "./problem.ts";
import type { DefaultTrafficInput, TrafficInput } from "./schema.ts";

/** What the rule needs to know of the file: the engine fields, where they are set. */
export interface EngineCheckSubject {
  defaultTraffic: DefaultTrafficInput | undefined;
  services: readonly { name: string; traffic?: TrafficInput | undefined; port?: number | undefined }[];
}

/**
 * One problem at each `engine: haproxy` in force (a service's own, or `defaults.traffic.engine`
 * once, when a service with a front port inherits it) when `haproxyBinary` is null.
 */
export function checkEngines(subject: EngineCheckSubject, haproxyBinary: string | null): Problem[] {
  if (haproxyBinary !== null) return [];
  const message =
    'engine "haproxy" needs the haproxy binary, which is not on PATH (nor in /usr/sbin): install it (Debian/Ubuntu: apt-get install haproxy) or set HOMEOSTAT_HAPROXY to its path, or use engine: embedded';
  const problems: Problem[] = [];
  let inheritsDefault = false;
  for (const service of subject.services) {
    const own = service.traffic?.engine;
    if (own === "haproxy") {
      problems.push({ path: ["services", service.name, "traffic", "engine"], target: "value", message });
    } else if (own === undefined && service.port !== undefined) {
      inheritsDefault = true;
    }
  }
  if (inheritsDefault && subject.defaultTraffic?.engine === "haproxy") {
    problems.push({ path: ["defaults", "traffic", "engine"], target: "value", message });
  }
  return problems;
}
