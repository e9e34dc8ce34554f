/**
 * Which instance slots should run which release. A service has two banks of `replicas` slots each
 * (bank b = slots b·replicas … b·replicas + replicas − 1), so a new release can start beside the
 * running one; this is what the reconcile core runs instead of "slots 0..replicas-1 run
 * service.release".
 */

import type { ServiceSpec } from "../../spec/model.ts";
import type { RolloutState } from "./types.ts";

export interface DesiredBank {
  bank: 0 | 1;
  release: string;
  slots: number[];
}

/** The slots of bank `bank` of `service`. */
export function bankSlots(service: ServiceSpec, bank: 0 | 1): number[] {
  const first = bank * service.replicas;
  return Array.from({ length: service.replicas }, (_, i) => first + i);
}

function bankOf(service: ServiceSpec, bank: 0 | 1, release: string): DesiredBank {
  return { bank, release, slots: bankSlots(service, bank) };
}

/**
 * The banks that should run, the previous release's first when both do:
 *
 * | rollout | banks |
 * | --- | --- |
 * | none | the active bank |
 * | starting, stepping | from and to |
 * | soaking | from (unless stopped at promotion) and to |
 * | rolling-back | from, and to while traffic still waits on from (it is restarting) |
 * | rolled-back | from |
 * | proven | to |
 *
 * A finished rollout's outcome stands even before the caller has updated `activeRelease` (a proven
 * release keeps its bank, traffic is on it). A finished rollout whose releases are both other than
 * `activeRelease` is history (something changed the release since): the active bank wins.
 */
export function desiredBanks(
  service: ServiceSpec,
  activeRelease: string,
  activeBank: 0 | 1,
  rollout: RolloutState | null,
): DesiredBank[] {
  const active = [bankOf(service, activeBank, activeRelease)];
  if (rollout === null) return active;
  const from = bankOf(service, rollout.fromBank, rollout.from);
  const to = bankOf(service, rollout.toBank, rollout.to);
  const stableStopped = rollout.stableStopped === true;
  const finishedIsHistory = activeRelease !== rollout.from && activeRelease !== rollout.to;
  switch (rollout.phase) {
    case "starting":
    case "stepping":
      return [from, to];
    case "soaking":
      return stableStopped ? [to] : [from, to];
    case "rolling-back":
      return stableStopped ? [from, to] : [from];
    case "rolled-back":
      return finishedIsHistory ? active : [from];
    case "proven":
      return finishedIsHistory ? active : [to];
  }
}
