import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startRollout } from "../../../src/decide/rollout/advanceRollout.ts";
import { bankSlots, type DesiredBank, desiredBanks } from "../../../src/decide/rollout/desiredBanks.ts";
import type { RolloutPhase, RolloutState } from "../../../src/decide/rollout/types.ts";
import { makeService } from "../../helpers/fleetFixture.ts";

const T0 = 1_700_000_000_000;
const service = makeService({ name: "api", replicas: 2, versions: ["v1", "v2"] });

/** v1 on bank 1 (slots 2, 3) → v2 on bank 0 (slots 0, 1): the banks swap on every deploy. */
function rollout(phase: RolloutPhase, stableStopped = false): RolloutState {
  const state = startRollout({ id: 1, service, from: "v1", to: "v2", fromBank: 1, toBank: 0, now: T0 });
  return { ...state, phase, stableStopped };
}

const V1: DesiredBank = { bank: 1, release: "v1", slots: [2, 3] };
const V2: DesiredBank = { bank: 0, release: "v2", slots: [0, 1] };

describe("desiredBanks", () => {
  it("numbers bank b as slots b·replicas … b·replicas + replicas − 1", () => {
    const three = makeService({ name: "web", replicas: 3 });
    assert.deepEqual(bankSlots(three, 0), [0, 1, 2]);
    assert.deepEqual(bankSlots(three, 1), [3, 4, 5]);
  });

  it("without a rollout, runs only the active bank", () => {
    assert.deepEqual(desiredBanks(service, "v1", 1, null), [V1]);
    assert.deepEqual(desiredBanks(service, "v7", 0, null), [{ bank: 0, release: "v7", slots: [0, 1] }]);
  });

  const cases: {
    phase: RolloutPhase;
    stableStopped: boolean;
    active: string;
    banks: DesiredBank[];
    why: string;
  }[] = [
    {
      phase: "starting",
      stableStopped: false,
      active: "v1",
      banks: [V1, V2],
      why: "new bank starts beside the old",
    },
    { phase: "stepping", stableStopped: false, active: "v1", banks: [V1, V2], why: "both take traffic" },
    { phase: "soaking", stableStopped: false, active: "v1", banks: [V1, V2], why: "stable kept warm" },
    { phase: "soaking", stableStopped: true, active: "v1", banks: [V2], why: "stable stopped at promotion" },
    {
      phase: "rolling-back",
      stableStopped: true,
      active: "v1",
      banks: [V1, V2],
      why: "stable restarting while v2 still serves",
    },
    {
      phase: "rolling-back",
      stableStopped: false,
      active: "v1",
      banks: [V1],
      why: "traffic back, v2 stopping",
    },
    {
      phase: "rolled-back",
      stableStopped: false,
      active: "v1",
      banks: [V1],
      why: "only the previous release",
    },
    { phase: "proven", stableStopped: true, active: "v2", banks: [V2], why: "only the new release" },
    {
      phase: "proven",
      stableStopped: true,
      active: "v1",
      banks: [V2],
      why: "before the active release is updated",
    },
  ];
  for (const c of cases) {
    it(`${c.phase}${c.stableStopped ? " (stable stopped)" : ""}: ${c.why}`, () => {
      assert.deepEqual(
        desiredBanks(service, c.active, c.active === "v1" ? 1 : 0, rollout(c.phase, c.stableStopped)),
        c.banks,
      );
    });
  }

  it("ignores a finished rollout whose outcome is no longer the active release", () => {
    const active: DesiredBank = { bank: 1, release: "v3", slots: [2, 3] };
    assert.deepEqual(desiredBanks(service, "v3", 1, rollout("proven", true)), [active]);
    assert.deepEqual(desiredBanks(service, "v3", 1, rollout("rolled-back")), [active]);
  });

  it("reads a stored state without stableStopped as a running stable bank", () => {
    const { stableStopped: _, ...stored } = rollout("soaking");
    assert.deepEqual(desiredBanks(service, "v1", 1, stored), [V1, V2]);
  });
});
