import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Action } from "../../src/decide/actions.ts";
import { decide, describeExit } from "../../src/decide/reconcile.ts";
import { freshSlot, recordFailure, type SlotState } from "../../src/decide/slotState.ts";
import type { RestartSpec } from "../../src/spec/model.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { type ExitOptions, exited, makeSnapshot, NOW } from "../helpers/snapshotFixture.ts";

function decideOne(policy: RestartSpec["policy"], exit: ExitOptions, slots: SlotState[] = []): Action {
  const fleet = makeFleet({ services: [{ name: "api", replicas: 1, restart: { policy } }] });
  const actions = decide(makeSnapshot({ fleet, instances: [exited("api", 0, exit)], slots }));
  assert.equal(actions.length, 1, JSON.stringify(actions));
  return actions[0]!;
}

function slotWith(overrides: Partial<SlotState>): SlotState {
  return { ...freshSlot("api-0", NOW - 5_000), ...overrides };
}

describe("decide: exited instances", () => {
  it("restarts an exited instance at once with process-exited when there is no backoff", () => {
    const action = decideOne("always", { code: 1 });
    assert.deepEqual(action, {
      type: "start",
      instance: "api-0",
      service: "api",
      slot: 0,
      release: "v1",
      reason: { code: "process-exited", message: "api-0 exited with code 1; starting v1" },
    });
  });

  it("restarts when the slot's backoff has already elapsed", () => {
    const action = decideOne("always", { code: 1 }, [
      slotWith({ consecutiveFailures: 3, nextStartAt: NOW - 1 }),
    ]);
    assert.equal(action.type, "start");
    assert.equal(action.reason.code, "process-exited");
  });

  it("restarts exactly at nextStartAt (the wait is over when now reaches it)", () => {
    const action = decideOne("always", { code: 1 }, [slotWith({ consecutiveFailures: 3, nextStartAt: NOW })]);
    assert.equal(action.type, "start");
  });

  it("waits with reason backoff until nextStartAt when it lies in the future", () => {
    const action = decideOne("always", { code: 1 }, [
      slotWith({ consecutiveFailures: 3, nextStartAt: NOW + 800 }),
    ]);
    assert.equal(action.type, "wait");
    if (action.type !== "wait") return;
    assert.equal(action.until, NOW + 800);
    assert.equal(action.reason.code, "backoff");
    assert.match(action.reason.message, /failure 3 in a row/);
    assert.match(action.reason.message, /800ms/);
  });

  it("waits with reason crash-loop when the slot is crash-looping", () => {
    const slot = slotWith({
      consecutiveFailures: 5,
      restartTimes: [1, 2, 3, 4, 5].map((i) => NOW - i * 1_000),
      nextStartAt: NOW + 30_000,
      crashLoop: true,
    });
    const action = decideOne("always", { code: 1 }, [slot]);
    assert.equal(action.type, "wait");
    if (action.type !== "wait") return;
    assert.equal(action.until, NOW + 30_000);
    assert.equal(action.reason.code, "crash-loop");
    assert.match(action.reason.message, /failed 5 times within 60s/);
    assert.match(action.reason.message, /30s/);
  });

  it("still retries a crash-looping slot once its long wait is over", () => {
    const slot = slotWith({ consecutiveFailures: 6, nextStartAt: NOW - 1, crashLoop: true });
    assert.equal(decideOne("always", { code: 1 }, [slot]).type, "start");
  });

  it("follows slot state produced by recordFailure end to end", () => {
    const fleet = makeFleet({ services: [{ name: "api", replicas: 1 }] });
    const spec = fleet.services[0]!.restart;
    let slot = freshSlot("api-0", NOW - 10_000);
    slot = recordFailure(slot, spec, NOW - 1_000, 0.5);
    slot = recordFailure(slot, spec, NOW, 0.5);
    const instances = [exited("api", 0, { at: NOW })];
    const waiting = decide(makeSnapshot({ fleet, instances, slots: [slot], now: NOW }));
    assert.deepEqual(
      waiting.map((a) => [a.type, a.reason.code, a.type === "wait" ? a.until : undefined]),
      [["wait", "backoff", NOW + 200]],
    );
    const later = decide(makeSnapshot({ fleet, instances, slots: [slot], now: NOW + 200 }));
    assert.deepEqual(
      later.map((a) => [a.type, a.reason.code]),
      [["start", "process-exited"]],
    );
  });

  it("ignores slot state belonging to other instances", () => {
    const other = { ...slotWith({ nextStartAt: NOW + 10_000 }), instance: "api-7" };
    assert.equal(decideOne("always", { code: 1 }, [other]).type, "start");
  });
});

describe("decide: restart policy", () => {
  it("never restarts under policy never, even after a failure", () => {
    for (const exit of [{ code: 1 }, { code: 0 }, { code: null, signal: "SIGKILL" }]) {
      const action = decideOne("never", exit);
      assert.equal(action.type, "wait");
      assert.equal(action.reason.code, "restart-policy");
      if (action.type === "wait") assert.equal(action.until, null);
      assert.match(action.reason.message, /"never"/);
    }
  });

  it("leaves a clean exit stopped under on-failure", () => {
    const action = decideOne("on-failure", { code: 0 });
    assert.equal(action.type, "wait");
    assert.equal(action.reason.code, "restart-policy");
    assert.match(action.reason.message, /exited with code 0/);
  });

  it("restarts a failed exit under on-failure", () => {
    const action = decideOne("on-failure", { code: 1 });
    assert.equal(action.type, "start");
    assert.equal(action.reason.code, "process-exited");
  });

  it("treats death by signal as a failure under on-failure", () => {
    const action = decideOne("on-failure", { code: null, signal: "SIGSEGV" });
    assert.equal(action.type, "start");
    assert.match(action.reason.message, /was killed by SIGSEGV/);
  });

  it("applies backoff under on-failure like under always", () => {
    const action = decideOne("on-failure", { code: 2 }, [
      slotWith({ consecutiveFailures: 2, nextStartAt: NOW + 50 }),
    ]);
    assert.equal(action.reason.code, "backoff");
  });

  it("restarts even a clean exit under always", () => {
    const action = decideOne("always", { code: 0 });
    assert.equal(action.type, "start");
    assert.equal(action.reason.code, "process-exited");
  });

  it("lets the restart policy win over a pending backoff", () => {
    const action = decideOne("never", { code: 1 }, [
      slotWith({ consecutiveFailures: 2, nextStartAt: NOW + 50 }),
    ]);
    assert.equal(action.reason.code, "restart-policy");
  });
});

describe("describeExit", () => {
  it("describes codes, signals and unknown exits", () => {
    assert.equal(describeExit({ lastExit: { code: 3, signal: null, at: NOW } }), "exited with code 3");
    assert.equal(
      describeExit({ lastExit: { code: null, signal: "SIGKILL", at: NOW } }),
      "was killed by SIGKILL",
    );
    assert.equal(describeExit({ lastExit: { code: null, signal: null, at: NOW } }), "exited");
    assert.equal(describeExit({ lastExit: null }), "exited");
  });
});
