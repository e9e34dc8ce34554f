/**
 * The decision core: a pure function from a snapshot to the actions that move the observed fleet
 * towards the spec, each with its reason. Level-triggered: it recomputes everything from the
 * snapshot each time, so a controller that crashed and came back decides the same way.
 */

import { instanceName, type ServiceSpec } from "../spec/model.ts";
import type { Action } from "./actions.ts";
import { type Reason, reason } from "./reasons.ts";
import type { BankTarget, ObservedInstance, Snapshot } from "./snapshot.ts";

export function decide(snapshot: Snapshot): Action[] {
  const actions: Action[] = [];
  // Observed instances by service, each service's indexed by slot: one walk, and maps of a size
  // of the number of services. (A map of every instance's name and a set of every wanted name,
  // rebuilt each pass, were most of decide's time at 10,000 instances.)
  const bySlot = new Map<string, (ObservedInstance | undefined)[]>();
  for (const i of snapshot.instances) {
    const slots = bySlot.get(i.service);
    if (slots === undefined) bySlot.set(i.service, slotArray(i));
    else slots[i.slot] = i;
  }
  const targetsByService = new Map<string, readonly BankTarget[]>();
  // Ready instances per service, counted once per pass when a dependency is first asked about
  // (counting per absent slot walked every instance for each one: quadratic in a large fleet).
  let readyByService: Map<string, number> | null = null;
  const readyOf = (service: string): number => {
    if (readyByService === null) {
      readyByService = new Map();
      for (const i of snapshot.instances) {
        if (i.runtime === "running" && i.health?.state === "ready") {
          readyByService.set(i.service, (readyByService.get(i.service) ?? 0) + 1);
        }
      }
    }
    return readyByService.get(service) ?? 0;
  };

  for (const service of snapshot.fleet.services) {
    const observedSlots = bySlot.get(service.name) ?? [];
    const targets = targetsOf(snapshot, service);
    targetsByService.set(service.name, targets);
    for (const target of targets) {
      let rollingSlotTaken = false;
      for (const slot of target.slots) {
        const name = instanceName(service.name, slot);
        if (snapshot.busy.has(name)) continue;
        const observed = observedSlots[slot];
        const action = decideSlot(
          snapshot,
          service,
          target,
          slot,
          name,
          observed,
          observedSlots,
          rollingSlotTaken,
          readyOf,
        );
        if (action === null) continue;
        if (action.type === "stop" && action.reason.code === "release-changed") rollingSlotTaken = true;
        actions.push(action);
      }
    }
  }

  for (const observed of snapshot.instances) {
    if (observed.runtime !== "running" || snapshot.busy.has(observed.name)) continue;
    // Wanted: its service is in the fleet and one of its banks has its slot.
    const banks = targetsByService.get(observed.service);
    if (banks?.some((bank) => bank.slots.includes(observed.slot))) continue;
    const why =
      banks !== undefined
        ? reason(
            "scaled-down",
            `${observed.name} (${observed.release}) is not in the desired set of ${observed.service}`,
          )
        : reason("service-removed", `service ${observed.service} is no longer in the fleet`);
    actions.push({
      type: "stop",
      instance: observed.name,
      service: observed.service,
      afterStop: "leave-stopped",
      reason: why,
    });
  }
  return actions;
}

/** The banks a service should run: from the snapshot, or the spec's release in slots 0..replicas-1. */
export function targetsOf(snapshot: Snapshot, service: ServiceSpec): readonly BankTarget[] {
  return (
    snapshot.targets?.get(service.name) ?? [
      { bank: 0, release: service.release, slots: Array.from({ length: service.replicas }, (_, i) => i) },
    ]
  );
}

function decideSlot(
  snapshot: Snapshot,
  service: ServiceSpec,
  target: BankTarget,
  slot: number,
  name: string,
  observed: ObservedInstance | undefined,
  observedSlots: readonly (ObservedInstance | undefined)[],
  rollingSlotTaken: boolean,
  readyOf: (service: string) => number,
): Action | null {
  const base = { instance: name, service: service.name };
  if (observed === undefined || observed.runtime === "absent") {
    const notReady = service.dependsOn.filter((dep) => readyOf(dep) === 0);
    if (notReady.length > 0) {
      return { type: "wait", ...base, until: null, reason: waitingFor(notReady) };
    }
    const why = observed?.replacing
      ? reason(
          observed.replacing.code,
          `starting ${target.release} to replace ${name} (${observed.replacing.message})`,
        )
      : reason("instance-missing", `${name} is not running; starting ${target.release}`);
    return start(service, target.release, slot, name, why);
  }

  if (observed.runtime === "exited") {
    const exit = describeExit(observed);
    const policy = service.restart.policy;
    const cleanExit = observed.lastExit?.code === 0 && observed.lastExit.signal === null;
    if (policy === "never" || (policy === "on-failure" && cleanExit)) {
      return {
        type: "wait",
        ...base,
        until: null,
        reason: reason("restart-policy", `${name} ${exit}; restart policy "${policy}" keeps it stopped`),
      };
    }
    const slotState = snapshot.slots.get(name);
    if (slotState?.nextStartAt != null && slotState.nextStartAt > snapshot.now) {
      const waitMs = slotState.nextStartAt - snapshot.now;
      const why = slotState.crashLoop
        ? reason(
            "crash-loop",
            `${name} failed ${slotState.restartTimes.length} times within ${seconds(service.restart.crashLoop.windowMs)}; next attempt in ${seconds(waitMs)}`,
          )
        : reason(
            "backoff",
            `${name} ${exit} (failure ${slotState.consecutiveFailures} in a row); restarting in ${seconds(waitMs)}`,
          );
      return { type: "wait", ...base, until: slotState.nextStartAt, reason: why };
    }
    const why = observed.replacing
      ? reason(
          observed.replacing.code,
          `starting ${target.release} to replace ${name} (${observed.replacing.message})`,
        )
      : reason("process-exited", `${name} ${exit}; starting ${target.release}`);
    return start(service, target.release, slot, name, why);
  }

  // Running.
  if (observed.health?.state === "unhealthy") {
    const failed = observed.health.reason.startsWith("startup") ? "startup-failed" : "liveness-failed";
    return {
      type: "stop",
      ...base,
      afterStop: "restart",
      reason: reason(failed, `${name} is unhealthy (${observed.health.reason}); replacing it`),
    };
  }
  if (observed.release !== target.release) {
    // Replace one instance of a service at a time, and only while the rest are ready and have
    // held for the stabilization window, so a release change never takes more than one
    // instance's capacity away and a bad release is caught after one instance.
    const othersReady =
      target.slots.length === 1 || allOthersReady(snapshot, service, target, slot, observedSlots);
    if (rollingSlotTaken || !othersReady) {
      return {
        type: "wait",
        ...base,
        until: null,
        reason: reason(
          "rolling-one-at-a-time",
          `${name} runs ${observed.release}, wants ${target.release}; waiting until the other instances have been ready for ${seconds(service.restart.resetAfterMs)}`,
        ),
      };
    }
    return {
      type: "stop",
      ...base,
      afterStop: "restart",
      reason: reason(
        "release-changed",
        `${name} runs ${observed.release}; replacing it with ${target.release}`,
      ),
    };
  }
  return null;
}

function start(service: ServiceSpec, release: string, slot: number, name: string, why: Reason): Action {
  return {
    type: "start",
    instance: name,
    service: service.name,
    slot,
    release,
    reason: why,
  };
}

function allOthersReady(
  snapshot: Snapshot,
  service: ServiceSpec,
  target: BankTarget,
  slot: number,
  observedSlots: readonly (ObservedInstance | undefined)[],
): boolean {
  for (const other of target.slots) {
    if (other === slot) continue;
    const name = instanceName(service.name, other);
    if (snapshot.busy.has(name)) return false;
    const observed = observedSlots[other];
    if (observed?.runtime !== "running" || observed.health?.state !== "ready") return false;
    // Ready is not enough: a release that crashes 2 s after passing readiness must not replace
    // every instance before anyone notices. The next instance waits until this one has held.
    if (snapshot.now - observed.health.since < service.restart.resetAfterMs) return false;
  }
  return true;
}

/** A service's first observed instance, in an array indexed by slot. */
function slotArray(instance: ObservedInstance): (ObservedInstance | undefined)[] {
  const slots: (ObservedInstance | undefined)[] = [];
  slots[instance.slot] = instance;
  return slots;
}

function waitingFor(services: string[]): Reason {
  const list = services.join(", ");
  return reason("waiting-for-dependency", `waiting for a ready instance of ${list} before starting`);
}

/** "exited with code 1", "was killed by SIGKILL", "exited". */
export function describeExit(observed: Pick<ObservedInstance, "lastExit">): string {
  const exit = observed.lastExit;
  if (exit === null) return "exited";
  if (exit.signal !== null) return `was killed by ${exit.signal}`;
  if (exit.code !== null) return `exited with code ${exit.code}`;
  return "exited";
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)}s`;
}
