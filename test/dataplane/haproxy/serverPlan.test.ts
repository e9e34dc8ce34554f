import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type PlannedService,
  pickProbabilities,
  planServers,
} from "../../../src/dataplane/haproxy/serverPlan.ts";
import { Balancer } from "../../../src/traffic/balance/balancer.ts";
import type { Endpoint } from "../../../src/traffic/contracts.ts";
import { binomialCheck } from "../../helpers/seededRandom.ts";
import { countPicks, T0, type TrafficOverrides, trafficSpec } from "../../traffic/balance/fixtures.ts";

const NONE: ReadonlySet<string> = new Set();

/** Endpoints api-<slot> for the given [zone, release] of each slot. */
function members(...slots: [zone: string, release: string][]): Endpoint[] {
  return slots.map(([zone, release], slot) => ({
    instance: `api-${slot}`,
    service: "api",
    release,
    zone,
    host: "local",
    address: "127.0.0.1",
    port: 30_000 + slot,
  }));
}

function servers(count: number): string[] {
  return Array.from({ length: count }, (_, slot) => `api-${slot}`);
}

function service(
  endpoints: Endpoint[],
  overrides: TrafficOverrides = {},
  more: Partial<PlannedService> = {},
): PlannedService {
  return { name: "api", traffic: trafficSpec(overrides), endpoints, ...more };
}

/** Server → weight. */
function weights(
  s: PlannedService,
  o: { ejected?: ReadonlySet<string>; draining?: ReadonlySet<string>; servers?: number } = {},
): Record<string, number> {
  const targets = planServers({
    service: s,
    servers: servers(o.servers ?? s.endpoints.length),
    ejected: o.ejected ?? NONE,
    draining: o.draining ?? NONE,
    now: T0,
  });
  return Object.fromEntries(targets.map((t) => [t.server, t.weight]));
}

describe("planServers", () => {
  it("follows release weights 90/10: three stable instances at 0.3 each, the canary at 0.1", () => {
    const s = service(members(["a", "v1"], ["a", "v1"], ["a", "v1"], ["a", "v2"]), {
      weights: { v1: 90, v2: 10 },
    });
    const p = pickProbabilities({ ...s, ejected: NONE, now: T0 });
    assert.ok(Math.abs((p.get("api-0") ?? 0) - 0.3) < 1e-9);
    assert.ok(Math.abs((p.get("api-3") ?? 0) - 0.1) < 1e-9);
    assert.deepEqual(weights(s), { "api-0": 256, "api-1": 256, "api-2": 256, "api-3": 85 });
    // Weights given by the snapshot replace the spec's; a release at 0 stays ready at weight 0.
    assert.deepEqual(weights({ ...s, weights: { v1: 0, v2: 1 } }), {
      "api-0": 0,
      "api-1": 0,
      "api-2": 0,
      "api-3": 256,
    });
    const targets = planServers({
      service: { ...s, weights: { v1: 0, v2: 1 } },
      servers: servers(4),
      ejected: NONE,
      draining: NONE,
      now: T0,
    });
    assert.deepEqual(
      targets.map((t) => t.state),
      ["ready", "ready", "ready", "ready"],
    );
    assert.deepEqual(targets[3], {
      server: "api-3",
      instance: "api-3",
      addr: "127.0.0.1",
      port: 30_003,
      weight: 256,
      state: "ready",
    });
  });

  it("spills priority load to the next zone when the local zone is half ejected (factor 1.4: 70 / 30)", () => {
    const s = service(
      members(
        ["a", "v1"],
        ["a", "v1"],
        ["a", "v1"],
        ["a", "v1"],
        ["b", "v1"],
        ["b", "v1"],
        ["b", "v1"],
        ["b", "v1"],
      ),
    );
    // Healthy: all in zone a, zone b gets nothing and stays ready at weight 0.
    assert.deepEqual(Object.values(weights(s)), [256, 256, 256, 256, 0, 0, 0, 0]);
    const ejected = new Set(["api-2", "api-3"]);
    const p = pickProbabilities({ ...s, ejected, now: T0 });
    assert.ok(Math.abs(p.get("api-0")! - 0.35) < 1e-9 && Math.abs(p.get("api-4")! - 0.075) < 1e-9);
    // 0.075 / 0.35 × 256 = 54.9
    assert.deepEqual(Object.values(weights(s, { ejected })), [256, 256, 0, 0, 55, 55, 55, 55]);
  });

  it("gives a zone at share 0.3 that share of its traffic, the rest to the unshifted zone", () => {
    const s = service(
      members(["a", "v1"], ["a", "v1"], ["b", "v1"], ["b", "v1"]),
      { priorities: [["a", "b"]] },
      { zoneShares: { b: 0.3, a: 1 } },
    );
    const p = pickProbabilities({ ...s, ejected: NONE, now: T0 });
    // b: 0.25 × 0.3 each; a: 0.25 + the 2 × 0.175 that b gives up, split between a's two.
    assert.ok(Math.abs(p.get("api-2")! - 0.075) < 1e-9 && Math.abs(p.get("api-0")! - 0.425) < 1e-9);
    assert.deepEqual(Object.values(weights(s)), [256, 256, 45, 45]);
    // Share 0: the zone is out of the traffic, its servers ready at weight 0.
    assert.deepEqual(Object.values(weights({ ...s, zoneShares: { b: 0 } })), [256, 256, 0, 0]);
    // No unshifted zone with a usable member: the shifted zone keeps its traffic.
    assert.deepEqual(
      Object.values(weights({ ...s, zoneShares: { b: 0.3 } }, { ejected: new Set(["api-0", "api-1"]) })),
      [0, 0, 256, 256],
    );
  });

  it("with every member ejected: panic send-to-all spreads over all, fail-closed gives all 0", () => {
    const endpoints = members(["a", "v1"], ["a", "v1"], ["b", "v1"]);
    const ejected = new Set(["api-0", "api-1", "api-2"]);
    assert.deepEqual(
      Object.values(weights(service(endpoints, { priorities: [["a", "b"]] }), { ejected })),
      [256, 256, 256],
    );
    // Send-to-all keeps the priorities: with all usable, zone a takes everything.
    assert.deepEqual(Object.values(weights(service(endpoints), { ejected })), [256, 256, 0]);
    assert.deepEqual(
      Object.values(weights(service(endpoints, { panic: { mode: "fail-closed" } }), { ejected })),
      [0, 0, 0],
    );
  });

  it("honours the ejected set as given: the max-ejection cap is the caller's", () => {
    const s = service(members(["a", "v1"], ["a", "v1"], ["a", "v1"], ["a", "v1"]), {
      outlier: { maxEjectionPercent: 10 },
      panic: { thresholdPercent: 0 },
    });
    assert.deepEqual(
      Object.values(weights(s, { ejected: new Set(["api-0", "api-1", "api-2"]) })),
      [0, 0, 0, 256],
    );
  });

  it("puts removed servers in drain when draining, else maint, at weight 0 and the placeholder address", () => {
    const s = service(members(["a", "v1"], ["a", "v1"]));
    const targets = planServers({
      service: s,
      servers: servers(4),
      ejected: NONE,
      draining: new Set(["api-2"]),
      now: T0,
    });
    assert.deepEqual(targets.slice(2), [
      { server: "api-2", instance: "api-2", addr: "127.0.0.1", port: 1, weight: 0, state: "drain" },
      { server: "api-3", instance: null, addr: "127.0.0.1", port: 1, weight: 0, state: "maint" },
    ]);
    // A member that is also listed as draining (back under the same name) is ready.
    assert.equal(
      planServers({
        service: s,
        servers: servers(2),
        ejected: NONE,
        draining: new Set(["api-1"]),
        now: T0,
      })[1]!.state,
      "ready",
    );
    // No endpoints at all: everything maint.
    assert.deepEqual(
      planServers({ service: service([]), servers: servers(2), ejected: NONE, draining: NONE, now: T0 }).map(
        (t) => t.state,
      ),
      ["maint", "maint"],
    );
  });

  it("gives a tiny share weight 1, not 0", () => {
    const s = service(members(["a", "v1"], ["a", "v2"]), {}, { weights: { v1: 1000, v2: 1 } });
    assert.deepEqual(Object.values(weights(s)), [256, 1]);
  });

  it("matches the embedded balancer's pick frequencies (releases, priorities, shares, an ejection)", () => {
    const endpoints = members(["a", "v1"], ["a", "v1"], ["a", "v2"], ["b", "v1"], ["b", "v2"], ["c", "v1"]);
    const s = service(
      endpoints,
      { weights: { v1: 70, v2: 30 }, priorities: [["a"], ["b"]] },
      { zoneShares: { b: 0.5 } },
    );
    const ejected = new Set(["api-1"]);
    const balancer = new Balancer(s.traffic);
    balancer.setEndpoints(endpoints);
    balancer.setZoneShares({ b: 0.5 });
    assert.ok(balancer.markStalled("api-1", T0));
    const picks = 20_000;
    const counts = countPicks(balancer, picks, (r) => r.endpoint.instance);
    const p = pickProbabilities({ ...s, ejected, now: T0 });
    let total = 0;
    for (const [instance, probability] of p) {
      total += probability;
      const check = binomialCheck(counts.get(instance) ?? 0, picks, probability, instance, 4);
      assert.ok(check.ok, check.message);
    }
    assert.ok(Math.abs(total - 1) < 1e-9);
  });
});
