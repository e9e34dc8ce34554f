import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { DomainHealth, DomainState } from "../../../src/decide/failover/types.ts";
import {
  advanceZones,
  EMPTY_ZONE_CONTROL,
  type EvacuationRequest,
  requestFailback,
  startEvacuation,
  type ZoneControlState,
  type ZoneEvent,
  zoneShares,
} from "../../../src/decide/failover/zoneControl.ts";
import { HomeostatError } from "../../../src/errors.ts";
import type { FailoverSpec } from "../../../src/spec/model.ts";
import { DEFAULT_FAILOVER } from "../../helpers/fleetFixture.ts";

/** The loader's defaults (25 % every 5 s, 30 s window, 5 min between automated failovers, 2 s confirm), automatic. */
const AUTO: FailoverSpec = { ...DEFAULT_FAILOVER, automatic: true };
const MANUAL_ONLY: FailoverSpec = { ...DEFAULT_FAILOVER, automatic: false };

type Zones = Record<string, DomainState>;

const ABC: Zones = { "zone-a": "healthy", "zone-b": "healthy", "zone-c": "healthy" };

/** The three zones healthy except the ones named. */
function fleet(changes: Zones = {}, base: Zones = ABC): Zones {
  return { ...base, ...changes };
}

function health(zones: Zones): DomainHealth[] {
  return Object.entries(zones).map(([zone, state]) => ({
    zone,
    state,
    healthyInstances: state === "healthy" ? 2 : state === "degraded" ? 1 : 0,
    totalInstances: 2,
    reason: `${zone} looks ${state}`,
  }));
}

/** What a test compares about an event: its type, code and the share it announces. */
function kinds(events: readonly ZoneEvent[]): [string, string, string, number][] {
  return events.map((event) => [event.type, event.zone, event.code, event.share]);
}

/**
 * A zone state machine driven tick by tick, as the failover manager drives it. Every state passes
 * through JSON between ticks when `viaJson` is set, exactly as the manager saves and reloads it.
 */
class Machine {
  state: ZoneControlState;
  readonly spec: FailoverSpec;
  readonly viaJson: boolean;

  constructor(spec: FailoverSpec, options: { state?: ZoneControlState; viaJson?: boolean } = {}) {
    this.spec = spec;
    this.state = options.state ?? EMPTY_ZONE_CONTROL;
    this.viaJson = options.viaJson ?? false;
  }

  tick(now: number, zones: Zones): ZoneEvent[] {
    const result = advanceZones(this.state, { now, zones: health(zones), spec: this.spec });
    this.#keep(result.state);
    return result.events;
  }

  /** Ticks every `everyMs` from `from` to `to` inclusive with the same health; all events. */
  hold(from: number, to: number, everyMs: number, zones: Zones): ZoneEvent[] {
    const events: ZoneEvent[] = [];
    for (let now = from; now <= to; now += everyMs) events.push(...this.tick(now, zones));
    return events;
  }

  evacuate(
    domain: string,
    now: number,
    zones: Zones,
    extra: Partial<EvacuationRequest> = {},
  ): ReturnType<typeof startEvacuation> {
    const outcome = startEvacuation(this.state, {
      domain,
      zones: health(zones),
      now,
      spec: this.spec,
      automated: false,
      why: "operator: maintenance",
      ...extra,
    });
    this.#keep(outcome.state);
    return outcome;
  }

  failback(domain: string, now: number): ZoneEvent[] {
    const outcome = requestFailback(this.state, { domain, now, why: "operator: fixed" });
    this.#keep(outcome.state);
    return outcome.events;
  }

  share(zone: string): number {
    return zoneShares(this.state)[zone] ?? 1;
  }

  shift(zone: string) {
    return this.state.shifts.find((shift) => shift.zone === zone);
  }

  #keep(state: ZoneControlState): void {
    this.state = this.viaJson ? (JSON.parse(JSON.stringify(state)) as ZoneControlState) : state;
  }
}

function isCode(code: string) {
  return (error: unknown) => error instanceof HomeostatError && error.code === code;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

describe("advanceZones: automatic evacuation", () => {
  it("evacuates a down zone only after it stayed down for confirmMs, all at once", () => {
    const machine = new Machine(AUTO);
    const down = fleet({ "zone-a": "down" });
    assert.deepEqual(machine.hold(0, 1_999, 500, down), []);
    assert.equal(machine.share("zone-a"), 1, "not before confirmMs");
    const events = machine.tick(2_000, down);
    assert.deepEqual(kinds(events), [["failover.started", "zone-a", "domain-down", 0]]);
    assert.match(
      events[0]!.message,
      /^evacuating zone-a \(automatic\): zone-a is down \(for 2 s\): zone-a looks down;/,
    );
    assert.match(events[0]!.message, /all of its traffic leaves at once/);
    assert.deepEqual(machine.shift("zone-a"), {
      zone: "zone-a",
      phase: "evacuated",
      share: 0,
      trigger: "automatic",
      reason: "zone-a is down (for 2 s): zone-a looks down",
      startedAt: 2_000,
      lastStepAt: 2_000,
      failback: {
        zone: "zone-a",
        phase: "down",
        healthySince: null,
        sharePercent: 0,
        lastStepAt: null,
        relapses: 0,
      },
    });
    assert.equal(machine.state.lastAutomatedAt, 2_000);
    assert.deepEqual(zoneShares(machine.state), { "zone-a": 0 });
  });

  it("never evacuates for a blip shorter than confirmMs, and a healthy pass restarts the timer", () => {
    const machine = new Machine(AUTO);
    const down = fleet({ "zone-a": "down" });
    assert.deepEqual(machine.hold(0, 1_500, 500, down), []);
    assert.deepEqual(machine.tick(1_600, ABC), [], "one healthy pass");
    // Down again from 1.7 s: 3.6 s is 3.6 s after the first failure but only 1.9 s into this one.
    assert.deepEqual(machine.hold(1_700, 3_600, 100, down), []);
    assert.equal(machine.state.shifts.length, 0);
    assert.equal(machine.state.downSince["zone-a"], 1_700);
    assert.deepEqual(kinds(machine.tick(3_700, down)), [["failover.started", "zone-a", "domain-down", 0]]);
  });

  it("a degraded pass is a break too: only an unbroken stretch of down counts", () => {
    const machine = new Machine(AUTO);
    machine.hold(0, 1_900, 100, fleet({ "zone-a": "down" }));
    machine.tick(2_000, fleet({ "zone-a": "degraded" }));
    assert.deepEqual(machine.hold(2_100, 4_000, 100, fleet({ "zone-a": "down" })), []);
    assert.equal(machine.tick(4_100, fleet({ "zone-a": "down" })).length, 1);
  });

  it("never evacuates a degraded zone automatically, however long it stays degraded", () => {
    const machine = new Machine(AUTO);
    assert.deepEqual(machine.hold(0, 600_000, 5_000, fleet({ "zone-a": "degraded" })), []);
    assert.deepEqual(machine.state.shifts, []);
  });

  it("does nothing by itself when the spec is not automatic", () => {
    const machine = new Machine(MANUAL_ONLY);
    assert.deepEqual(machine.hold(0, 600_000, 1_000, fleet({ "zone-a": "down" })), []);
    assert.deepEqual(machine.state.shifts, []);
    assert.equal(machine.state.lastAutomatedAt, null);
  });

  it("does not change the state it is given", () => {
    const machine = new Machine(AUTO);
    machine.hold(0, 2_000, 1_000, fleet({ "zone-a": "down", "zone-b": "down" }));
    const frozen = deepFreeze(machine.state);
    const copy = JSON.parse(JSON.stringify(frozen));
    advanceZones(frozen, { now: 10_000, zones: health(ABC), spec: AUTO });
    startEvacuation(frozen, {
      domain: "zone-c",
      zones: health(ABC),
      now: 10_000,
      spec: AUTO,
      automated: false,
      why: "x",
      override: { reason: "drill" },
    });
    requestFailback(frozen, { domain: "zone-a", now: 10_000, why: "x" });
    assert.deepEqual(frozen, copy);
    // The shared empty state is not touched either.
    assert.deepEqual(EMPTY_ZONE_CONTROL, { shifts: [], lastAutomatedAt: null, refused: {}, downSince: {} });
  });
});

describe("zone evacuation in steps", () => {
  it("a manual evacuation of a healthy zone loses stepPercent every stepIntervalMs, never faster", () => {
    const machine = new Machine(MANUAL_ONLY);
    const outcome = machine.evacuate("zone-a", 0, ABC);
    assert.equal(outcome.decision.allowed, true);
    assert.deepEqual(kinds(outcome.events), [
      ["failover.started", "zone-a", "failover-manual", 1],
      ["failover.step", "zone-a", "failover-step", 0.75],
    ]);
    assert.match(outcome.events[0]!.message, /in steps of 25 % every 5 s/);
    assert.equal(
      outcome.events[1]!.message,
      "zone-a keeps 75 % of its traffic; the rest goes to the other zones",
    );
    assert.equal(machine.shift("zone-a")?.phase, "evacuating");
    assert.equal(machine.shift("zone-a")?.trigger, "manual");

    // Ticks every 250 ms: the share moves only on the step interval.
    const shares = new Map<number, number>();
    const events: ZoneEvent[] = [];
    for (let now = 250; now <= 20_000; now += 250) {
      events.push(...machine.tick(now, ABC));
      shares.set(now, machine.share("zone-a"));
    }
    assert.equal(shares.get(4_750), 0.75);
    assert.equal(shares.get(5_000), 0.5);
    assert.equal(shares.get(9_750), 0.5);
    assert.equal(shares.get(10_000), 0.25);
    assert.equal(shares.get(14_750), 0.25);
    assert.equal(shares.get(15_000), 0);
    assert.deepEqual(kinds(events), [
      ["failover.step", "zone-a", "failover-step", 0.5],
      ["failover.step", "zone-a", "failover-step", 0.25],
      ["failover.completed", "zone-a", "failover-complete", 0],
    ]);
    assert.equal(events[2]!.message, "zone-a is evacuated: it gets no traffic until it fails back");
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    assert.equal(machine.state.lastAutomatedAt, null, "a manual evacuation is not an automated one");
  });

  it("a late tick moves one step only, never several", () => {
    const machine = new Machine(MANUAL_ONLY);
    machine.evacuate("zone-a", 0, ABC);
    assert.deepEqual(kinds(machine.tick(60_000, ABC)), [["failover.step", "zone-a", "failover-step", 0.5]]);
    assert.deepEqual(machine.tick(64_999, ABC), [], "the interval counts from the late step");
    assert.equal(machine.tick(65_000, ABC).length, 1);
    assert.equal(machine.share("zone-a"), 0.25);
  });

  it("a degraded zone is evacuated in steps too (it still serves), with an uneven step", () => {
    const machine = new Machine({ ...MANUAL_ONLY, stepPercent: 30, stepIntervalMs: 1_000 });
    const degraded = fleet({ "zone-b": "degraded" });
    machine.evacuate("zone-b", 0, degraded);
    const shares = [machine.share("zone-b")];
    for (let now = 1_000; now <= 4_000; now += 1_000) {
      machine.tick(now, degraded);
      shares.push(machine.share("zone-b"));
    }
    assert.deepEqual(shares, [0.7, 0.4, 0.1, 0, 0]);
    assert.equal(machine.shift("zone-b")?.phase, "evacuated");
  });

  it("a manual evacuation of a down zone takes all of its traffic at once", () => {
    const machine = new Machine(MANUAL_ONLY);
    const outcome = machine.evacuate("zone-a", 0, fleet({ "zone-a": "down" }));
    assert.deepEqual(kinds(outcome.events), [["failover.started", "zone-a", "failover-manual", 0]]);
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    assert.equal(machine.share("zone-a"), 0);
  });

  it("a zone that goes down in the middle of its evacuation drops to 0 at once", () => {
    const machine = new Machine(MANUAL_ONLY);
    machine.evacuate("zone-a", 0, fleet({ "zone-a": "degraded" }));
    machine.tick(5_000, fleet({ "zone-a": "degraded" }));
    assert.equal(machine.share("zone-a"), 0.5);
    const events = machine.tick(5_100, fleet({ "zone-a": "down" }));
    assert.deepEqual(kinds(events), [["failover.completed", "zone-a", "failover-complete", 0]]);
    assert.match(events[0]!.message, /went down during its evacuation/);
    assert.equal(machine.share("zone-a"), 0);
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
  });

  it("a step of 100 % evacuates a serving zone in one move and says it is complete", () => {
    const machine = new Machine({ ...MANUAL_ONLY, stepPercent: 100 });
    const outcome = machine.evacuate("zone-a", 0, ABC);
    assert.deepEqual(kinds(outcome.events), [
      ["failover.started", "zone-a", "failover-manual", 1],
      ["failover.completed", "zone-a", "failover-complete", 0],
    ]);
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    assert.deepEqual(machine.hold(5_000, 60_000, 5_000, ABC), [], "nothing left to step");
  });
});

describe("zone evacuation: safety rules", () => {
  it("never evacuates every zone, by hand (override or not) or automatically", () => {
    const two: Zones = { "zone-a": "healthy", "zone-b": "healthy" };
    const manual = new Machine(MANUAL_ONLY);
    manual.evacuate("zone-a", 0, two);
    const before = manual.state;
    for (const extra of [{}, { override: { reason: "drill" } }]) {
      const refused = manual.evacuate("zone-b", 1_000, two, extra);
      assert.equal(refused.decision.allowed, false);
      assert.equal(refused.decision.rule, "never-evacuate-all");
      assert.deepEqual(refused.events, []);
      assert.equal(manual.state, before, "a refused manual request changes nothing");
    }

    const automatic = new Machine(AUTO);
    const bothDown: Zones = { "zone-a": "down", "zone-b": "down" };
    const events = automatic.hold(0, 2_000, 1_000, bothDown);
    assert.deepEqual(kinds(events), [
      ["failover.started", "zone-a", "domain-down", 0],
      ["failover.refused", "zone-b", "failover-refused", 1],
    ]);
    assert.match(
      events[1]!.message,
      /^not evacuating zone-b automatically: evacuating zone-b would leave no zone with traffic/,
    );
    assert.deepEqual(zoneShares(automatic.state), { "zone-a": 0 });
  });

  it("one automated evacuation at a time: the refusal is announced once, and again after a new failure", () => {
    const machine = new Machine(AUTO);
    const aAndB = fleet({ "zone-a": "down", "zone-b": "down" });
    const first = machine.hold(0, 2_000, 1_000, aAndB);
    assert.deepEqual(kinds(first), [
      ["failover.started", "zone-a", "domain-down", 0],
      ["failover.refused", "zone-b", "failover-refused", 1],
    ]);
    assert.equal(
      first[1]!.message,
      "not evacuating zone-b automatically: zone-a is already evacuated; one evacuation at a time",
    );
    assert.deepEqual(machine.hold(2_250, 20_000, 250, aAndB), [], "not announced every tick");
    assert.equal(machine.share("zone-b"), 1);

    // zone-b recovers, then fails again: a new failure, a new announcement (after confirmMs again).
    assert.deepEqual(machine.tick(21_000, fleet({ "zone-a": "down" })), []);
    assert.deepEqual(machine.hold(22_000, 23_000, 1_000, aAndB), []);
    assert.deepEqual(kinds(machine.tick(24_000, aAndB)), [
      ["failover.refused", "zone-b", "failover-refused", 1],
    ]);
    assert.deepEqual(machine.hold(25_000, 40_000, 1_000, aAndB), []);
  });

  it("keeps the minimum interval after an automated evacuation, then evacuates", () => {
    const machine = new Machine(AUTO);
    machine.hold(0, 2_000, 1_000, fleet({ "zone-a": "down" }));
    machine.hold(3_000, 60_000, 1_000, ABC); // zone-a fails back completely
    assert.deepEqual(machine.state.shifts, []);

    const bDown = fleet({ "zone-b": "down" });
    const refusals = machine.hold(100_000, 301_000, 1_000, bDown);
    assert.deepEqual(kinds(refusals), [["failover.refused", "zone-b", "failover-refused", 1]]);
    assert.match(
      refusals[0]!.message,
      /the last automated failover was 100 s ago, the minimum interval is 5 min/,
    );
    assert.equal(machine.share("zone-b"), 1);
    // 5 min after the last automated evacuation started (at 2 s).
    assert.deepEqual(kinds(machine.tick(302_000, bDown)), [["failover.started", "zone-b", "domain-down", 0]]);
    assert.equal(machine.state.lastAutomatedAt, 302_000);
    assert.deepEqual(machine.state.refused, {}, "the refusal is forgotten once the zone is evacuated");
  });

  it("a person may step over one-at-a-time and min-interval with a reason, and it is said", () => {
    const machine = new Machine(AUTO);
    machine.hold(0, 2_000, 1_000, fleet({ "zone-a": "down" }));
    const plain = machine.evacuate("zone-b", 5_000, fleet({ "zone-a": "down" }));
    assert.equal(plain.decision.allowed, false);
    assert.equal(plain.decision.rule, "one-at-a-time");
    assert.match(plain.decision.reason, /a manual request may override this with a reason/);
    assert.equal(machine.shift("zone-b"), undefined);

    const overridden = machine.evacuate("zone-b", 5_000, fleet({ "zone-a": "down" }), {
      override: { reason: "zone-b's rack is being rewired" },
    });
    assert.equal(overridden.decision.allowed, true);
    assert.match(
      overridden.decision.reason,
      /manual override "zone-b's rack is being rewired" bypasses one-at-a-time .* and min-interval/,
    );
    assert.match(overridden.events[0]!.message, /manual override/);
    assert.equal(machine.share("zone-b"), 0.75);
    assert.equal(machine.state.lastAutomatedAt, 2_000, "a manual evacuation does not restart the interval");
  });

  it("a manual request inside the minimum interval is refused without an override", () => {
    const machine = new Machine(AUTO);
    machine.hold(0, 2_000, 1_000, fleet({ "zone-a": "down" }));
    machine.hold(3_000, 60_000, 1_000, ABC);
    const refused = machine.evacuate("zone-b", 61_000, ABC);
    assert.equal(refused.decision.rule, "min-interval");
    assert.equal(
      machine.evacuate("zone-b", 61_000, ABC, { override: { reason: "drill" } }).decision.allowed,
      true,
    );
  });

  it("a second manual failover of a shifted zone is a conflict, whatever its phase", () => {
    const machine = new Machine(AUTO);
    machine.evacuate("zone-a", 0, ABC);
    assert.throws(() => machine.evacuate("zone-a", 1_000, ABC), isCode("HS_CONFLICT"));
    machine.hold(5_000, 15_000, 5_000, ABC);
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    assert.throws(
      () => machine.evacuate("zone-a", 16_000, ABC),
      (error: unknown) => {
        assert.ok(error instanceof HomeostatError);
        assert.equal(error.code, "HS_CONFLICT");
        assert.match(
          error.message,
          /zone-a is already evacuated \(share 0 %\); use `homeostat failback zone-a`/,
        );
        return true;
      },
    );
    // Also when the shift is automatic.
    const automatic = new Machine(AUTO);
    automatic.hold(0, 2_000, 1_000, fleet({ "zone-b": "down" }));
    assert.throws(
      () => automatic.evacuate("zone-b", 3_000, fleet({ "zone-b": "down" }), { override: { reason: "x" } }),
      isCode("HS_CONFLICT"),
    );
  });

  it("an automated refusal without a rule (a zone the fleet does not have) is announced once too", () => {
    const request: EvacuationRequest = {
      domain: "zone-x",
      zones: health(ABC),
      now: 0,
      spec: AUTO,
      automated: true,
      why: "down",
    };
    const first = startEvacuation(EMPTY_ZONE_CONTROL, request);
    assert.deepEqual(kinds(first.events), [["failover.refused", "zone-x", "failover-refused", 1]]);
    assert.match(first.events[0]!.message, /zone-x is not a zone of this fleet/);
    const second = startEvacuation(first.state, { ...request, now: 1_000 });
    assert.deepEqual(second.events, []);
  });

  it("an automated request for a zone already shifted changes nothing (no second shift)", () => {
    const machine = new Machine(AUTO);
    machine.evacuate("zone-a", 0, ABC);
    const before = machine.state;
    const outcome = startEvacuation(before, {
      domain: "zone-a",
      zones: health(fleet({ "zone-a": "down" })),
      now: 10_000,
      spec: AUTO,
      automated: true,
      why: "down",
    });
    assert.equal(outcome.state, before);
    assert.deepEqual(outcome.events, []);
    assert.equal(outcome.decision.allowed, false);
  });
});

describe("zone failback", () => {
  /** zone-a down from 0, evacuated automatically at 2 s. */
  function evacuatedAutomatically(options: { viaJson?: boolean } = {}): Machine {
    const machine = new Machine(AUTO, options);
    machine.hold(0, 2_000, 1_000, fleet({ "zone-a": "down" }));
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    return machine;
  }

  it("an automatic evacuation fails back by itself after the window, in steps, to restored", () => {
    const machine = evacuatedAutomatically();
    assert.deepEqual(machine.hold(3_000, 9_000, 1_000, fleet({ "zone-a": "down" })), []);
    const waiting = machine.tick(10_000, ABC);
    assert.deepEqual(kinds(waiting), [["failback.waiting", "zone-a", "failback-waiting", 0]]);
    assert.equal(waiting[0]!.message, "zone-a is healthy: no traffic until it stays healthy for 30 s");

    const shares = new Map<number, number>();
    const events: ZoneEvent[] = [];
    for (let now = 10_500; now <= 60_000; now += 500) {
      events.push(...machine.tick(now, ABC));
      shares.set(now, machine.share("zone-a"));
    }
    assert.equal(shares.get(39_500), 0, "nothing before the window is over");
    assert.equal(shares.get(40_000), 0.25);
    assert.equal(shares.get(44_500), 0.25);
    assert.equal(shares.get(45_000), 0.5);
    assert.equal(shares.get(50_000), 0.75);
    assert.equal(shares.get(54_500), 0.75);
    assert.equal(shares.get(55_000), 1);
    assert.deepEqual(kinds(events), [
      ["failback.step", "zone-a", "failback-step", 0.25],
      ["failback.step", "zone-a", "failback-step", 0.5],
      ["failback.step", "zone-a", "failback-step", 0.75],
      ["failback.step", "zone-a", "failback-step", 1],
      ["failback.completed", "zone-a", "failback-complete", 1],
    ]);
    assert.equal(events[4]!.message, "zone-a has all its traffic back");
    assert.deepEqual(machine.state.shifts, [], "the shift is removed");
    assert.deepEqual(zoneShares(machine.state), {});
  });

  it("the ramp never moves more than one step per tick, even after a long gap", () => {
    const machine = evacuatedAutomatically();
    machine.tick(10_000, ABC);
    machine.tick(40_000, ABC);
    assert.equal(machine.share("zone-a"), 0.25);
    machine.tick(200_000, ABC);
    assert.equal(machine.share("zone-a"), 0.5);
    assert.equal(machine.shift("zone-a")?.phase, "failing-back");
  });

  it("a relapse inside the window keeps the share at 0 and restarts the window", () => {
    const machine = evacuatedAutomatically();
    machine.hold(10_000, 31_000, 1_000, ABC);
    const relapse = machine.tick(32_000, fleet({ "zone-a": "down" }));
    assert.deepEqual(kinds(relapse), [["failback.relapsed", "zone-a", "failback-relapsed", 0]]);
    assert.match(
      relapse[0]!.message,
      /^zone-a failed again 22 s into its stabilization window: traffic back to 0 %/,
    );
    assert.deepEqual(kinds(machine.tick(33_000, ABC)), [
      ["failback.waiting", "zone-a", "failback-waiting", 0],
    ]);
    machine.hold(34_000, 62_000, 1_000, ABC);
    assert.equal(machine.share("zone-a"), 0, "the first window does not count any more");
    machine.tick(63_000, ABC);
    assert.equal(machine.share("zone-a"), 0.25);
  });

  it("a relapse during the ramp drops the share to 0 at once (degraded is not healthy)", () => {
    const machine = evacuatedAutomatically();
    machine.hold(10_000, 45_000, 1_000, ABC);
    assert.equal(machine.share("zone-a"), 0.5);
    const relapse = machine.tick(45_500, fleet({ "zone-a": "degraded" }));
    assert.deepEqual(kinds(relapse), [["failback.relapsed", "zone-a", "failback-relapsed", 0]]);
    assert.match(relapse[0]!.message, /failed again during failback at 50 %/);
    assert.equal(machine.share("zone-a"), 0);
    assert.equal(machine.shift("zone-a")?.phase, "evacuated");
    assert.equal(machine.shift("zone-a")?.failback?.relapses, 1);
    machine.hold(46_000, 75_000, 1_000, ABC);
    assert.equal(machine.share("zone-a"), 0, "a whole new window first");
    machine.tick(76_000, ABC);
    assert.equal(machine.share("zone-a"), 0.25);
  });

  it("does not flap: a zone failing again and again inside the window stays at 0 and is not re-evacuated", () => {
    const machine = evacuatedAutomatically();
    const events: ZoneEvent[] = [];
    const shares: number[] = [];
    // 20 s healthy, 5 s down (longer than confirmMs), for 10 minutes.
    for (let now = 3_000; now <= 600_000; now += 1_000) {
      const zones = (now - 3_000) % 25_000 < 20_000 ? ABC : fleet({ "zone-a": "down" });
      events.push(...machine.tick(now, zones));
      shares.push(machine.share("zone-a"));
    }
    assert.ok(
      shares.every((share) => share === 0),
      "the share stays 0 throughout",
    );
    assert.equal(events.filter((e) => e.type === "failover.started").length, 0);
    assert.equal(events.filter((e) => e.type === "failback.step").length, 0);
    const relapses = events.filter((e) => e.type === "failback.relapsed").length;
    assert.equal(relapses, 24);
    assert.equal(machine.shift("zone-a")?.failback?.relapses, 24);
    assert.equal(machine.state.lastAutomatedAt, 2_000);
  });

  it("a manual evacuation stays evacuated until requestFailback, which then waits out the window", () => {
    const machine = new Machine(AUTO);
    machine.evacuate("zone-a", 0, ABC);
    assert.deepEqual(
      machine.hold(5_000, 15_000, 5_000, ABC).map((e) => e.type),
      ["failover.step", "failover.step", "failover.completed"],
    );
    assert.deepEqual(machine.hold(16_000, 600_000, 1_000, ABC), [], "healthy for 10 min: still evacuated");
    assert.equal(machine.share("zone-a"), 0);

    const asked = machine.failback("zone-a", 600_500);
    assert.deepEqual(kinds(asked), [["failback.waiting", "zone-a", "failback-waiting", 0]]);
    assert.match(
      asked[0]!.message,
      /failback of zone-a requested: operator: fixed; traffic returns once it stays healthy/,
    );
    assert.deepEqual(machine.failback("zone-a", 600_600), [], "asking twice changes nothing");

    machine.hold(601_000, 630_000, 1_000, ABC);
    assert.equal(
      machine.share("zone-a"),
      0,
      "the window counts from the first healthy pass after the request",
    );
    machine.tick(631_000, ABC);
    assert.equal(machine.share("zone-a"), 0.25);
    machine.hold(632_000, 646_000, 1_000, ABC);
    assert.deepEqual(machine.state.shifts, []);
  });

  it("requestFailback of a zone that is not shifted is HS_NOT_FOUND", () => {
    assert.throws(
      () => requestFailback(EMPTY_ZONE_CONTROL, { domain: "zone-a", now: 0, why: "x" }),
      isCode("HS_NOT_FOUND"),
    );
  });

  it("requestFailback of an automatic shift leaves it failing back by itself", () => {
    const machine = evacuatedAutomatically();
    const before = machine.state;
    assert.deepEqual(machine.failback("zone-a", 3_000), []);
    assert.equal(machine.state, before);
  });

  it("requestFailback in the middle of an evacuation stops it where it is", () => {
    const machine = new Machine(MANUAL_ONLY);
    machine.evacuate("zone-a", 0, ABC);
    machine.tick(5_000, ABC);
    assert.equal(machine.share("zone-a"), 0.5);
    machine.failback("zone-a", 6_000);
    assert.equal(machine.shift("zone-a")?.phase, "failing-back");
    machine.hold(7_000, 36_000, 1_000, ABC);
    assert.equal(machine.share("zone-a"), 0.5, "held while the zone proves itself");
    machine.tick(37_000, ABC);
    assert.equal(machine.share("zone-a"), 0.75);
    machine.hold(38_000, 42_000, 1_000, ABC);
    assert.deepEqual(machine.state.shifts, []);
  });

  it("a zone held by a failback request that goes down loses its traffic at once", () => {
    const machine = new Machine(MANUAL_ONLY);
    machine.evacuate("zone-a", 0, ABC);
    machine.failback("zone-a", 1_000);
    assert.equal(machine.share("zone-a"), 0.75);
    const events = machine.tick(2_000, fleet({ "zone-a": "down" }));
    assert.equal(machine.share("zone-a"), 0);
    assert.deepEqual(kinds(events), [["failback.relapsed", "zone-a", "failback-relapsed", 0]]);
    machine.hold(3_000, 32_000, 1_000, ABC);
    assert.equal(machine.share("zone-a"), 0, "then the whole window again");
    machine.tick(33_000, ABC);
    assert.equal(machine.share("zone-a"), 0.25);
  });
});

describe("zoneShares and persistence", () => {
  it("lists every shifted zone with the share it keeps", () => {
    assert.deepEqual(zoneShares(EMPTY_ZONE_CONTROL), {});
    const machine = new Machine(MANUAL_ONLY);
    machine.evacuate("zone-a", 0, ABC);
    machine.evacuate("zone-b", 0, fleet({ "zone-b": "down" }), { override: { reason: "both racks" } });
    assert.deepEqual(zoneShares(machine.state), { "zone-a": 0.75, "zone-b": 0 });
  });

  it("gives the same decisions when its state goes through JSON between every tick", () => {
    /** A scripted story: evacuation, refusal, relapse, ramp, restore, manual override and failback. */
    function story(machine: Machine): { events: ZoneEvent[]; shares: Record<string, number>[] } {
      const events: ZoneEvent[] = [];
      const shares: Record<string, number>[] = [];
      for (let now = 0; now <= 400_000; now += 1_000) {
        let zones: Zones = ABC;
        if (now < 20_000) zones = fleet({ "zone-a": "down", "zone-b": now < 8_000 ? "down" : "healthy" });
        else if (now >= 40_000 && now < 45_000) zones = fleet({ "zone-a": "down" });
        else if (now >= 200_000 && now < 210_000) zones = fleet({ "zone-c": "down" });
        if (now === 100_000) {
          events.push(...machine.evacuate("zone-b", now, zones, { override: { reason: "drill" } }).events);
        }
        if (now === 150_000) events.push(...machine.failback("zone-b", now));
        events.push(...machine.tick(now, zones));
        shares.push(zoneShares(machine.state));
      }
      return { events, shares };
    }
    const direct = story(new Machine(AUTO));
    const viaJson = story(new Machine(AUTO, { viaJson: true }));
    assert.deepEqual(viaJson, direct);
    // The story exercised what it meant to.
    const types = new Set(direct.events.map((e) => e.type));
    for (const type of [
      "failover.started",
      "failover.step",
      "failover.completed",
      "failover.refused",
      "failback.waiting",
      "failback.step",
      "failback.relapsed",
      "failback.completed",
    ]) {
      assert.ok(types.has(type as ZoneEvent["type"]), `the story has a ${type} event`);
    }
  });
});

describe("evacuation steps wait for added capacity (scale-up before moving)", () => {
  const SPEC: FailoverSpec = { ...DEFAULT_FAILOVER, stepPercent: 25, stepIntervalMs: 1_000 };
  const ready = () => null;
  const notReady = (zone: string, next: number) => `api would run at 90 % with ${zone} at ${next * 100} %`;

  function tick(state: ZoneControlState, now: number, gate: (zone: string, next: number) => string | null) {
    return advanceZones(state, { now, zones: health(ABC), spec: SPEC, gate });
  }

  it("holds the first step while the gate says capacity is coming, announces it once, then moves when it is ready", () => {
    const started = startEvacuation(EMPTY_ZONE_CONTROL, {
      domain: "zone-a",
      zones: health(ABC),
      now: 0,
      spec: SPEC,
      automated: false,
      why: "operator: maintenance",
      gate: notReady,
    });
    assert.deepEqual(kinds(started.events), [
      ["failover.started", "zone-a", "failover-manual", 1],
      ["failover.step-held", "zone-a", "failover-step-held", 1],
    ]);
    assert.match(
      started.events[1]!.message,
      /zone-a stays at 100 % for now: api would run at 90 % with zone-a at 75 %/,
    );
    let state = started.state;
    for (const now of [1_000, 2_000]) {
      const held = tick(state, now, notReady);
      assert.deepEqual(held.events, [], "a hold is announced once");
      assert.equal(zoneShares(held.state)["zone-a"], 1);
      state = held.state;
    }
    const moved = tick(state, 2_500, ready);
    assert.deepEqual(kinds(moved.events), [["failover.step", "zone-a", "failover-step", 0.75]]);
    assert.match(moved.events[0]!.message, /the added capacity is ready after 2\.5 s/);
    assert.equal(moved.state.shifts[0]!.held, null);
    // The next step keeps its own interval from the moment this one happened.
    assert.deepEqual(tick(moved.state, 3_000, ready).events, []);
    assert.deepEqual(kinds(tick(moved.state, 3_500, ready).events), [
      ["failover.step", "zone-a", "failover-step", 0.5],
    ]);
  });

  it("goes ahead after MAX_HOLD_STEPS step intervals without the capacity, and says shedding covers the rest", () => {
    const started = startEvacuation(EMPTY_ZONE_CONTROL, {
      domain: "zone-b",
      zones: health(ABC),
      now: 0,
      spec: SPEC,
      automated: false,
      why: "operator: drill",
      gate: notReady,
    });
    let state = started.state;
    for (let now = 1_000; now < 3_000; now += 1_000) state = tick(state, now, notReady).state;
    assert.equal(zoneShares(state)["zone-b"], 1, "still waiting before 3 step intervals");
    const forced = tick(state, 3_000, notReady);
    assert.deepEqual(kinds(forced.events), [["failover.step", "zone-b", "failover-step", 0.75]]);
    assert.match(
      forced.events[0]!.message,
      /after waiting 3 s for added capacity: .*shedding covers the rest/,
    );
  });

  it("never holds a zone that is down: its traffic leaves at once whatever the gate says", () => {
    const started = startEvacuation(EMPTY_ZONE_CONTROL, {
      domain: "zone-c",
      zones: health(fleet({ "zone-c": "down" })),
      now: 0,
      spec: SPEC,
      automated: false,
      why: "operator: zone-c is gone",
      gate: notReady,
    });
    assert.equal(zoneShares(started.state)["zone-c"], 0);
    assert.ok(started.events.every((e) => e.type !== "failover.step-held"));
  });
});
