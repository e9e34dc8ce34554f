import type { InstanceLaunch } from "../drivers/driver.ts";
import { HomeostatError } from "../errors.ts";
import { instanceName, placementOf, type ServiceSpec } from "../spec/model.ts";

/** What the driver needs to run slot `slot` of `service` on release `version`. */
export function launchFor(service: ServiceSpec, slot: number, version: string): InstanceLaunch {
  const release = service.releases[version];
  if (release === undefined) {
    throw new HomeostatError("HS_INTERNAL", `service ${service.name} has no release ${version}`);
  }
  return {
    instance: instanceName(service.name, slot),
    service: service.name,
    slot,
    port: service.basePort + slot,
    release,
    placement: placementOf(service, slot),
  };
}
