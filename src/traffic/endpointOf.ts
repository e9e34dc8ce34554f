/** Where a slot's instance takes traffic: a pure function of the spec, shared by the controller and tests. */

import type { ServiceSpec } from "../spec/model.ts";
import type { Endpoint } from "./contracts.ts";

/** The endpoint for slot `slot` of `service` running `release`. */
export function endpointOf(service: ServiceSpec, instance: string, slot: number, release: string): Endpoint {
  const place = service.placement[slot % service.placement.length]!;
  return {
    instance,
    service: service.name,
    release,
    zone: place.zone,
    host: place.host,
    address: "127.0.0.1",
    port: service.basePort + slot,
  };
}
