import { defaultMaxReplicas } from "./capacity.ts";
import type { Problem } from "./problem.ts";
import type { CapacityInput } from "./schema.ts";

/** What the capacity rules need to know about one service. */
export interface CapacityCheckedService {
  name: string;
  replicas?: number | undefined;
  capacity?: CapacityInput | undefined;
}

/**
 * `maxReplicas`, once a service's capacity is merged over `defaults.capacity`, lies between
 * `replicas` (the service already runs that many) and `2 × replicas` (the instance ports it
 * reserves: one more instance would have no port). A value the service sets is blamed there; one it
 * inherits is blamed at its `replicas`, the value that makes the default wrong for it.
 */
export function checkCapacities(
  defaults: CapacityInput | undefined,
  services: readonly CapacityCheckedService[],
): Problem[] {
  const problems: Problem[] = [];
  for (const service of services) {
    const { replicas } = service;
    const own = service.capacity?.maxReplicas;
    const maxReplicas = own ?? defaults?.maxReplicas;
    if (replicas === undefined || maxReplicas === undefined) continue;
    const message = maxReplicasProblem(
      maxReplicas,
      replicas,
      own === undefined ? " (from defaults.capacity)" : "",
    );
    if (message === undefined) continue;
    const blamed = own === undefined ? ["replicas"] : ["capacity", "maxReplicas"];
    problems.push({ path: ["services", service.name, ...blamed], target: "value", message });
  }
  return problems;
}

function maxReplicasProblem(maxReplicas: number, replicas: number, origin: string): string | undefined {
  if (maxReplicas < replicas) {
    return `maxReplicas ${maxReplicas}${origin} is below replicas ${replicas}: the service already runs ${replicas} instances`;
  }
  const ceiling = defaultMaxReplicas(replicas);
  if (maxReplicas > ceiling) {
    return `maxReplicas ${maxReplicas}${origin} is above 2 × replicas (${ceiling}): a service reserves 2 × replicas instance ports (basePort .. basePort + ${ceiling - 1}), so it can never run more than ${ceiling} instances`;
  }
  return undefined;
}
