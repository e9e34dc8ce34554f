/**
 * What the fault rules matching an endpoint do to one attempt: an added delay, then at most one
 * misbehaviour in place of the real exchange (the oldest rule that fires wins; rates are drawn
 * per attempt).
 */

import type { FaultRule } from "../faults.ts";

export type FaultEffect =
  | { kind: "none" }
  | { kind: "status"; status: number; rule: FaultRule }
  | { kind: "reset"; rule: FaultRule }
  | { kind: "blackhole"; rule: FaultRule };

export interface FaultPlan {
  delayMs: number;
  effect: FaultEffect;
}

const NO_EFFECT: FaultEffect = Object.freeze({ kind: "none" });

export function planFaults(rules: readonly FaultRule[], random: () => number): FaultPlan {
  let delayMs = 0;
  let effect = NO_EFFECT;
  for (const rule of rules) {
    const fault = rule.fault;
    switch (fault.kind) {
      case "latency":
        delayMs += fault.ms;
        break;
      case "error":
        if (effect === NO_EFFECT && fires(fault.rate, random))
          effect = { kind: "status", status: fault.status, rule };
        break;
      case "reset":
        if (effect === NO_EFFECT && fires(fault.rate, random)) effect = { kind: "reset", rule };
        break;
      case "blackhole":
        if (effect === NO_EFFECT) effect = { kind: "blackhole", rule };
        break;
    }
  }
  return { delayMs, effect };
}

function fires(rate: number | undefined, random: () => number): boolean {
  return rate === undefined || rate >= 1 || random() < rate;
}
