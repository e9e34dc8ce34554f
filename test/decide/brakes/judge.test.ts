import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { instancesAllowed } from "../../../src/decide/brakes/blastRadius.ts";
import { judgeAutomated, judgeManual } from "../../../src/decide/brakes/judge.ts";
import { limitsOf, longestWindowMs } from "../../../src/decide/brakes/limits.ts";
import { countInWindow } from "../../../src/decide/brakes/rateLimit.ts";
import type {
  ActedOn,
  AutomatedProposal,
  AutomatedRecord,
  BrakeInputs,
  BrakeLimits,
  BrakeVerdict,
  PauseState,
} from "../../../src/decide/brakes/types.ts";
import { brakeUsage } from "../../../src/decide/brakes/usage.ts";

const T0 = 1_800_000_000_000;
const MIN = 60_000;
const HOUR = 3_600_000;

/** api: 4 instances, 3 restarts per 10 min, 50 %; solo: 1 instance; web: 4 instances. Fleet 25 %. */
function limits(overrides: Partial<BrakeLimits["fleet"]> = {}): BrakeLimits {
  return {
    services: new Map([
      ["api", { restarts: { max: 3, windowMs: 10 * MIN }, blastRadius: 0.5, size: 4 }],
      ["solo", { restarts: { max: 3, windowMs: 10 * MIN }, blastRadius: 0.5, size: 1 }],
      ["web", { restarts: { max: 10, windowMs: 10 * MIN }, blastRadius: 0.5, size: 4 }],
    ]),
    fleet: {
      blastRadius: 0.25,
      rollbacks: { max: 2, windowMs: HOUR },
      failovers: { max: 1, windowMs: HOUR },
      ...overrides,
    },
  };
}

function inputs(over: Partial<BrakeInputs> = {}): BrakeInputs {
  return { now: T0, pause: null, limits: limits(), recent: [], actedOn: [], ...over };
}

/** A restart of `instance` (of `service`) that stops a live process when `live`. */
function restart(instance: string, service: string, live: boolean): AutomatedProposal {
  return {
    kind: "restart",
    service,
    target: instance,
    disrupts: live ? [{ instance, service }] : [],
  };
}

const restarts = (service: string, ...ats: number[]): AutomatedRecord[] =>
  ats.map((at, i) => ({ kind: "restart", service, target: `${service}-${i}`, at }));

function rule(verdict: BrakeVerdict): string {
  return verdict.allowed ? "allowed" : verdict.hold.rule;
}

const PAUSE: PauseState = { by: "alice", reason: "db migration", since: T0 - MIN };

describe("pause", () => {
  it("holds every automated action, with who paused, why and since when", () => {
    for (const proposal of [
      restart("api-0", "api", false),
      { kind: "rollback", service: "api", target: "api", disrupts: [] } as const,
      { kind: "failover", service: null, target: "zone-a", disrupts: [] } as const,
    ]) {
      const verdict = judgeAutomated(proposal, inputs({ pause: PAUSE }));
      assert.equal(verdict.allowed, false);
      if (verdict.allowed) continue;
      assert.equal(verdict.hold.rule, "paused");
      assert.equal(verdict.hold.reason.code, "automation-paused");
      assert.match(verdict.hold.reason.message, /paused by alice since .* \(db migration\)/);
      assert.equal(verdict.hold.until, null, "a pause lifts only with resume");
    }
  });

  it("wins over every other brake (one reason, the one an operator must act on)", () => {
    const verdict = judgeAutomated(
      restart("api-0", "api", true),
      inputs({ pause: PAUSE, recent: restarts("api", T0 - 1, T0 - 2, T0 - 3) }),
    );
    assert.equal(rule(verdict), "paused");
  });
});

describe("manual actions", () => {
  const ask = { what: "deploy of api v2", override: false, reason: "" };

  it("go ahead while automation runs, override or not", () => {
    assert.deepEqual(judgeManual(null, ask), { allowed: true, overrode: null });
    assert.deepEqual(judgeManual(null, { ...ask, override: true }), { allowed: true, overrode: null });
  });

  it("are refused while paused without --override, saying how to proceed", () => {
    const verdict = judgeManual(PAUSE, ask);
    assert.equal(verdict.allowed, false);
    if (verdict.allowed) return;
    assert.equal(verdict.why, "paused");
    assert.match(verdict.message, /deploy of api v2 refused: automation is paused by alice/);
    assert.match(verdict.message, /--override with --reason/);
  });

  it("need a reason to override a pause (blank is none)", () => {
    const verdict = judgeManual(PAUSE, { ...ask, override: true, reason: "  " });
    assert.equal(verdict.allowed, false);
    if (!verdict.allowed) assert.equal(verdict.why, "override-needs-reason");
  });

  it("go ahead over a pause with --override and a reason, naming the pause they overrode", () => {
    assert.deepEqual(judgeManual(PAUSE, { ...ask, override: true, reason: "hotfix" }), {
      allowed: true,
      overrode: PAUSE,
    });
  });
});

describe("restart rate limit (per service, every slot together)", () => {
  it("allows the max-th restart in the window and holds the one after (exactly at the limit)", () => {
    const two = restarts("api", T0 - 3 * MIN, T0 - 2 * MIN);
    assert.equal(rule(judgeAutomated(restart("api-2", "api", false), inputs({ recent: two }))), "allowed");
    const three = restarts("api", T0 - 3 * MIN, T0 - 2 * MIN, T0 - MIN);
    const verdict = judgeAutomated(restart("api-3", "api", false), inputs({ recent: three }));
    assert.equal(rule(verdict), "restart-rate");
    if (verdict.allowed) return;
    assert.equal(verdict.hold.reason.code, "brake-rate-limit");
    assert.equal(verdict.hold.used, 3);
    assert.equal(verdict.hold.limit, 3);
    // The oldest (T0 − 3 min) leaves the 10 min window 7 min from now.
    assert.equal(verdict.hold.until, T0 + 7 * MIN);
    assert.match(verdict.hold.reason.message, /api had 3 automated restarts in the last 10 min \(limit 3\)/);
  });

  it("slides: an action exactly one window old has left it", () => {
    const recent = restarts("api", T0 - 10 * MIN, T0 - 2 * MIN, T0 - MIN);
    assert.equal(rule(judgeAutomated(restart("api-0", "api", false), inputs({ recent }))), "allowed");
    const justInside = restarts("api", T0 - 10 * MIN + 1, T0 - 2 * MIN, T0 - MIN);
    const verdict = judgeAutomated(restart("api-0", "api", false), inputs({ recent: justInside }));
    assert.equal(rule(verdict), "restart-rate");
    if (!verdict.allowed) assert.equal(verdict.hold.until, T0 + 1);
    // …and a millisecond later it is allowed.
    assert.equal(
      rule(judgeAutomated(restart("api-0", "api", false), inputs({ now: T0 + 1, recent: justInside }))),
      "allowed",
    );
  });

  it("counts each service apart, and ignores other kinds of action", () => {
    const recent: AutomatedRecord[] = [
      ...restarts("web", T0 - 3, T0 - 2, T0 - 1),
      { kind: "rollback", service: "api", target: "api", at: T0 - 1 },
      { kind: "failover", service: null, target: "zone-a", at: T0 - 1 },
    ];
    assert.equal(rule(judgeAutomated(restart("api-0", "api", false), inputs({ recent }))), "allowed");
  });

  it("holds a crash-restart of a dead instance too: the rate limit is about how often, not how much", () => {
    const recent = restarts("solo", T0 - 3, T0 - 2, T0 - 1);
    assert.equal(rule(judgeAutomated(restart("solo-0", "solo", false), inputs({ recent }))), "restart-rate");
  });

  it("has no limit for a service that is no longer in the fleet (it is only being stopped)", () => {
    const recent = restarts("gone", T0 - 3, T0 - 2, T0 - 1, T0);
    assert.equal(rule(judgeAutomated(restart("gone-0", "gone", true), inputs({ recent }))), "allowed");
  });

  it("waits for as many to leave as it is over when the limit was lowered", () => {
    const recent = restarts("api", T0 - 5 * MIN, T0 - 4 * MIN, T0 - 3 * MIN, T0 - 2 * MIN);
    const verdict = judgeAutomated(restart("api-0", "api", false), inputs({ recent }));
    // 4 used of 3: two must leave; the second oldest leaves at T0 + 6 min.
    if (verdict.allowed) assert.fail("held");
    assert.equal(verdict.hold.until, T0 + 6 * MIN);
  });
});

describe("rollback and failover rate limits (fleet-wide)", () => {
  const rollback = (service: string): AutomatedProposal => ({
    kind: "rollback",
    service,
    target: service,
    disrupts: [],
  });
  const failover: AutomatedProposal = { kind: "failover", service: null, target: "zone-b", disrupts: [] };

  it("count rollbacks of every service together, per hour", () => {
    const recent: AutomatedRecord[] = [
      { kind: "rollback", service: "api", target: "api", at: T0 - 50 * MIN },
      { kind: "rollback", service: "web", target: "web", at: T0 - 10 * MIN },
    ];
    const verdict = judgeAutomated(rollback("solo"), inputs({ recent }));
    assert.equal(rule(verdict), "rollback-rate");
    if (!verdict.allowed) assert.equal(verdict.hold.until, T0 + 10 * MIN);
    assert.equal(rule(judgeAutomated(rollback("solo"), inputs({ recent: recent.slice(1) }))), "allowed");
    assert.equal(
      rule(judgeAutomated(rollback("solo"), inputs({ recent, now: T0 + 10 * MIN }))),
      "allowed",
      "the hour slid past the first",
    );
  });

  it("count failovers per hour", () => {
    const recent: AutomatedRecord[] = [
      { kind: "failover", service: null, target: "zone-a", at: T0 - HOUR + 1 },
    ];
    assert.equal(rule(judgeAutomated(failover, inputs({ recent }))), "failover-rate");
    assert.equal(rule(judgeAutomated(failover, inputs({ recent, now: T0 + 1 }))), "allowed");
  });
});

describe("blast radius", () => {
  const acting = (...names: string[]): ActedOn[] =>
    names.map((instance) => ({ instance, service: instance.replace(/-\d+$/, ""), since: T0 - 1 }));

  it("allows ⌊share × size⌋ instances at once and never fewer than one", () => {
    assert.equal(instancesAllowed(0.5, 4), 2);
    assert.equal(instancesAllowed(0.5, 3), 1);
    assert.equal(instancesAllowed(0.5, 1), 1);
    assert.equal(instancesAllowed(0.25, 1), 1);
    assert.equal(instancesAllowed(0.29, 100), 29, "no float noise: 0.29 × 100 is 29");
    assert.equal(instancesAllowed(1, 4), 4);
  });

  it("lets a service's stops of live processes reach its share (exactly at the limit) and holds the next", () => {
    const fleetWide = limits({ blastRadius: 1 });
    assert.equal(
      rule(
        judgeAutomated(
          restart("api-1", "api", true),
          inputs({ limits: fleetWide, actedOn: acting("api-0") }),
        ),
      ),
      "allowed",
    );
    const verdict = judgeAutomated(
      restart("api-2", "api", true),
      inputs({ limits: fleetWide, actedOn: acting("api-0", "api-1") }),
    );
    assert.equal(rule(verdict), "blast-radius-service");
    if (verdict.allowed) return;
    assert.equal(verdict.hold.reason.code, "brake-blast-radius");
    assert.equal(verdict.hold.used, 3);
    assert.equal(verdict.hold.limit, 2);
    assert.equal(verdict.hold.until, null, "it lifts when a replacement is ready, not at a time");
    assert.match(verdict.hold.reason.message, /3 of api's 4 instances at once \(api-0, api-1, api-2\)/);
  });

  it("never holds a start in a slot whose process is gone: it only adds (1-instance service, 50 %)", () => {
    // solo-0 crashed; a restart stops nothing. Even with the fleet and the service at their limit
    // in every other way, its replacement goes ahead.
    const verdict = judgeAutomated(
      restart("solo-0", "solo", false),
      inputs({ actedOn: acting("solo-0", "api-0", "api-1", "web-0") }),
    );
    assert.equal(rule(verdict), "allowed");
  });

  it("lets a 1-instance service's hung instance be replaced: one at a time is always allowed", () => {
    assert.equal(rule(judgeAutomated(restart("solo-0", "solo", true), inputs())), "allowed");
  });

  it("does not count the instance twice when it is already being acted on", () => {
    const fleetWide = limits({ blastRadius: 1 });
    assert.equal(
      rule(
        judgeAutomated(
          restart("api-1", "api", true),
          inputs({ limits: fleetWide, actedOn: acting("api-0", "api-1") }),
        ),
      ),
      "allowed",
    );
  });

  it("holds at the fleet's share too (9 instances × 25 % = 2)", () => {
    const verdict = judgeAutomated(
      restart("web-0", "web", true),
      inputs({ actedOn: acting("api-0", "solo-0") }),
    );
    assert.equal(rule(verdict), "blast-radius-fleet");
    if (!verdict.allowed) assert.match(verdict.hold.reason.message, /3 of the fleet's 9 instances/);
    assert.equal(
      rule(judgeAutomated(restart("web-0", "web", true), inputs({ actedOn: acting("api-0") }))),
      "allowed",
    );
  });

  it("holds a failover whose still-serving instances are over a service's share", () => {
    const failover: AutomatedProposal = {
      kind: "failover",
      service: null,
      target: "zone-a",
      disrupts: [
        { instance: "api-0", service: "api" },
        { instance: "api-1", service: "api" },
        { instance: "api-2", service: "api" },
      ],
    };
    assert.equal(
      rule(judgeAutomated(failover, inputs({ limits: limits({ blastRadius: 1 }) }))),
      "blast-radius-service",
    );
    assert.equal(
      rule(judgeAutomated({ ...failover, disrupts: [] }, inputs())),
      "allowed",
      "a zone whose instances serve nothing takes nothing away",
    );
  });

  it("is checked after the rate limit (a rate-limited action says so first)", () => {
    const verdict = judgeAutomated(
      restart("api-2", "api", true),
      inputs({ recent: restarts("api", T0 - 3, T0 - 2, T0 - 1), actedOn: acting("api-0", "api-1") }),
    );
    assert.equal(rule(verdict), "restart-rate");
  });
});

describe("windows and usage", () => {
  it("countInWindow counts an action stamped after now as recent: a clock stepped back never loosens a brake", () => {
    assert.deepEqual(countInWindow([T0 + 5], { max: 1, windowMs: MIN }, T0), {
      used: 1,
      max: 1,
      windowMs: MIN,
      freeAt: T0 + 5 + MIN,
    });
  });

  it("brakeUsage says how close each service and the fleet are to their limits", () => {
    const usage = brakeUsage({
      now: T0,
      limits: limits(),
      recent: [
        ...restarts("api", T0 - 2 * MIN, T0 - MIN),
        { kind: "rollback", service: "web", target: "web", at: T0 - MIN },
      ],
      actedOn: [{ instance: "api-1", service: "api", since: T0 - 1 }],
    });
    const api = usage.services.find((s) => s.service === "api")!;
    assert.equal(api.restarts.used, 2);
    assert.equal(api.restarts.max, 3);
    assert.deepEqual(api.actedOn, { instances: ["api-1"], limit: 2, share: 0.5, size: 4 });
    assert.deepEqual(usage.fleet.actedOn, { count: 1, limit: 2, share: 0.25, size: 9 });
    assert.equal(usage.fleet.rollbacks.used, 1);
    assert.equal(usage.fleet.failovers.used, 0);
  });

  it("limitsOf reads the fleet's spec, with defaults for a fleet built by hand", () => {
    const fleet = {
      services: [
        { name: "api", replicas: 3 },
        { name: "big", replicas: 40 },
      ],
    } as unknown as Parameters<typeof limitsOf>[0];
    const l = limitsOf(fleet);
    assert.deepEqual(l.services.get("api"), {
      restarts: { max: 10, windowMs: 10 * MIN },
      blastRadius: 0.5,
      size: 3,
    });
    assert.equal(l.services.get("big")?.restarts.max, 80, "2 × replicas above 10");
    assert.deepEqual(l.fleet, {
      blastRadius: 0.25,
      rollbacks: { max: 3, windowMs: HOUR },
      failovers: { max: 2, windowMs: HOUR },
    });
    assert.equal(longestWindowMs(l), HOUR);
  });
});
