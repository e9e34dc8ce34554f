/**
 * Failover planning on a live fleet, through the real CLI and controller: shared-fate findings,
 * static stability from measured load, and a stepwise plan for losing a zone — read-only.
 *
 * Every fleet here is built so that the verdict is known before the controller is asked: the test
 * sends an exact number of requests, counts which instance served each, and derives the load the
 * controller must measure (requests ÷ its 30 s window) and from it every figure it must report.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { APP, freePort, freePortRange, NODE, readyStatus, type Sandbox, sandbox } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** The controller's load window (src/controller/capacityPicture.ts LOAD_WINDOW_MS), in seconds. */
const LOAD_WINDOW_S = 30;
/** Requests sent to each fleet: load = REQUESTS / 30 = 2 rps while they are all in the window. */
const REQUESTS = 60;
const LOAD_RPS = REQUESTS / LOAD_WINDOW_S;
const CEILING = 0.8;
const ZONES = ["zone-a", "zone-b", "zone-c"];

function release(): string {
  return [
    "      v1:",
    `        command: ${JSON.stringify(NODE)}`,
    `        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]`,
  ].join("\n");
}

const HEAD = `version: 1
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
defaults:
  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { http: { path: /ready }, interval: 200ms, timeout: 150ms }
`;

/** api: three instances, one per zone and host, behind a front port, `capacityRps` each. */
function apiFleetYaml(name: string, base: number, front: number, capacityRps: number): string {
  return `${HEAD.replace("version: 1\n", `version: 1\nname: ${name}\n`)}services:
  api:
    replicas: 3
    basePort: ${base}
    port: ${front}
    placement: { zones: [zone-a, zone-b, zone-c] }
    capacity: { rps: ${capacityRps}, targetUtilization: ${CEILING * 100}% }
    release: v1
    releases:
${release()}
`;
}

/** solo: two instances on one host, no declared capacity. */
function soloFleetYaml(base: number): string {
  return `${HEAD.replace("version: 1\n", "version: 1\nname: solo-e2e\n")}services:
  solo:
    replicas: 2
    basePort: ${base}
    placement: { hosts: [host-a] }
    release: v1
    releases:
${release()}
`;
}

/**
 * Sends requests of `criticality` (one at a time until the front serves, then 6 at a time) until
 * exactly `count` were answered 200 by an instance — each one attempt the controller counts (a
 * healthy fleet retries nothing). Returns how many each instance served (the demo app names
 * itself in `x-instance`) and when the first was sent.
 */
async function sendExactly(
  front: number,
  count: number,
  criticality: string,
): Promise<{ perInstance: Map<string, number>; firstAt: number }> {
  const perInstance = new Map<string, number>();
  const firstAt = Date.now();
  let served = 0;
  const one = async (): Promise<void> => {
    const r = await fetch(`http://127.0.0.1:${front}/`, {
      headers: { "x-homeostat-criticality": criticality },
      signal: AbortSignal.timeout(5_000),
    }).catch(() => null);
    await r?.arrayBuffer();
    if (r?.status !== 200) return;
    served += 1;
    const instance = r.headers.get("x-instance") ?? "?";
    perInstance.set(instance, (perInstance.get(instance) ?? 0) + 1);
  };
  await waitFor(
    async () => {
      await one();
      return served > 0;
    },
    { timeoutMs: 30_000, what: "the front port serving" },
  );
  while (served < count) {
    await Promise.all(Array.from({ length: Math.min(6, count - served) }, one));
  }
  return { perInstance, firstAt };
}

interface CheckDoc {
  findings: { severity: string; kind: string; service: string; message: string; fix: string }[];
  headroom: { zone: string; survivesLoss: boolean; survivorPeakUtilization: number; headroomRps: number }[];
  requiredCapacityFactor: number;
  skipped: { service: string; reason: string }[];
}

interface PlanDoc {
  domain: string;
  feasible: boolean;
  summary: string;
  targets: string[];
  steps: {
    index: number;
    shiftedPercent: number;
    addInstances: { service: string; zone: string; count: number; reason: string }[];
    shed: { service: string; criticality: string; rps: number; reason: string }[];
    projected: { instance: string; service: string; zone: string; utilization: number }[];
    peakUtilization: number;
    withinCeiling: boolean;
    reasons: string[];
  }[];
}

function near(actual: number, expected: number, what: string): void {
  assert.ok(Math.abs(actual - expected) < 1e-6, `${what}: ${actual}, expected ${expected}`);
}

/**
 * A live fleet of `api` (3 instances of `capacityRps`) that served exactly REQUESTS requests of
 * `criticality`; `before` returns once the controller measures exactly that load.
 */
function liveApiFleet(name: string, capacityRps: number, criticality: string) {
  const fleet = {
    box: undefined as Sandbox | undefined,
    perInstance: new Map<string, number>(),
    firstAt: 0,
    cli(...args: string[]) {
      return fleet.box!.cli([...args, "--api-port", String(fleet.box!.apiPort)]);
    },
    /** The measured load is exact only while every request is inside the 30 s window. */
    inWindow(): void {
      const age = Date.now() - fleet.firstAt;
      assert.ok(age < (LOAD_WINDOW_S - 2) * 1000, `the machine is too slow: the load was sent ${age}ms ago`);
    },
  };
  before(async () => {
    const box = await sandbox();
    fleet.box = box;
    const front = await freePort();
    box.up(box.file("fleet.yaml", apiFleetYaml(name, await freePortRange(6), front, capacityRps)));
    await readyStatus(box, 3);
    const sent = await sendExactly(front, REQUESTS, criticality);
    fleet.perInstance = sent.perInstance;
    fleet.firstAt = sent.firstAt;
    // Losing zone-a leaves api-1 and api-2: all the load on 2 × capacity.
    const expected = LOAD_RPS / (2 * capacityRps);
    let last: unknown;
    await waitFor(
      async () => {
        const doc = await box.get<CheckDoc>("/v1/check");
        last = doc.headroom;
        return Math.abs((doc.headroom[0]?.survivorPeakUtilization ?? -1) - expected) < 1e-6;
      },
      { timeoutMs: 10_000, what: `the measured load to be ${LOAD_RPS} rps` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; last headroom ${JSON.stringify(last)}`);
    });
  });
  after(async () => {
    await fleet.box?.cleanup();
  });
  return fleet;
}

describe("a fleet that can lose any zone (capacity 1000 rps per instance, load 2 rps)", () => {
  const CAPACITY = 1000;
  const fleet = liveApiFleet("stable-e2e", CAPACITY, "default");

  test("check: no finding, every zone survives with the exact survivor utilization; --strict exits 0", async () => {
    fleet.inWindow();
    const result = await fleet.cli("check", "--json");
    assert.equal(result.code, 0, result.stderr);
    const doc = JSON.parse(result.stdout) as CheckDoc;
    assert.deepEqual(doc.findings, [], "three replicas on three hosts in three zones share no fate");
    assert.deepEqual(doc.skipped, []);
    near(doc.requiredCapacityFactor, 1.5, "three zones need 3/2 × the load");
    assert.deepEqual(
      doc.headroom.map((h) => h.zone),
      ZONES,
    );
    for (const h of doc.headroom) {
      assert.equal(h.survivesLoss, true, h.zone);
      near(h.survivorPeakUtilization, LOAD_RPS / (2 * CAPACITY), `${h.zone} survivors' peak`);
      near(h.headroomRps, CEILING * 2 * CAPACITY - LOAD_RPS, `${h.zone} headroom`);
    }
    const strict = await fleet.cli("check", "--strict");
    assert.equal(strict.code, 0, strict.stderr);
    assert.match(strict.stdout, /shared fate: none found/);
    assert.doesNotMatch(strict.stdout, /OVERLOADS/);
    assert.equal(strict.stdout.match(/\bsurvives\b/g)?.length, 3, strict.stdout);
    fleet.inWindow();
  });

  test("plan failover zone-a: feasible in 4 steps of 25 % to zone-b and zone-c, nothing added or shed", async () => {
    fleet.inWindow();
    const result = await fleet.cli("plan", "failover", "zone-a", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as PlanDoc;
    assert.equal(plan.domain, "zone-a");
    assert.equal(plan.feasible, true, plan.summary);
    assert.deepEqual(plan.targets, ["zone-b", "zone-c"]);
    assert.deepEqual(
      plan.steps.map((s) => [
        s.index,
        s.shiftedPercent,
        s.withinCeiling,
        s.addInstances.length,
        s.shed.length,
      ]),
      [
        [1, 25, true, 0, 0],
        [2, 50, true, 0, 0],
        [3, 75, true, 0, 0],
        [4, 100, true, 0, 0],
      ],
    );
    // After the last step zone-b and zone-c carry the whole load: the utilizations add up to it.
    const last = plan.steps[3]!;
    assert.deepEqual(
      last.projected.map((p) => [p.instance, p.zone]),
      [
        ["api-1", "zone-b"],
        ["api-2", "zone-c"],
      ],
    );
    near(
      last.projected.reduce((sum, p) => sum + p.utilization * CAPACITY, 0),
      LOAD_RPS,
      "load carried by zone-b and zone-c after 100 %",
    );
    assert.match(
      plan.summary,
      /^moves zone-a's load to zone-b, zone-c in 4 steps of 25 %, peak [\d.]+ % within the ceiling$/,
    );

    const text = await fleet.cli("plan", "failover", "zone-b");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^failover of zone-b: FEASIBLE — /);
    const unknown = await fleet.cli("plan", "failover", "zone-x");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no zone zone-x/);
    fleet.inWindow();
  });
});

describe("a fleet that cannot lose a zone (capacity 0.01 rps per instance, load 2 rps, all critical)", () => {
  const CAPACITY = 0.01;
  const fleet = liveApiFleet("unstable-e2e", CAPACITY, "critical");

  test("check --strict exits 1 because every zone's loss OVERLOADS the others, by the exact amount", async () => {
    fleet.inWindow();
    const result = await fleet.cli("check", "--json");
    assert.equal(result.code, 0, "without --strict the verdict is information, not failure");
    const doc = JSON.parse(result.stdout) as CheckDoc;
    assert.deepEqual(doc.findings, [], "the only problem is capacity");
    for (const h of doc.headroom) {
      assert.equal(h.survivesLoss, false, h.zone);
      near(h.survivorPeakUtilization, LOAD_RPS / (2 * CAPACITY), `${h.zone} survivors' peak`);
      near(h.headroomRps, CEILING * 2 * CAPACITY - LOAD_RPS, `${h.zone} headroom (negative: short)`);
    }
    const strict = await fleet.cli("check", "--strict");
    assert.equal(strict.code, 1, strict.stderr);
    const verdicts = strict.stdout.split("\n").filter((l) => /^zone-[abc]\s/.test(l));
    assert.equal(verdicts.length, 3, strict.stdout);
    for (const line of verdicts) assert.match(line, /OVERLOADS the others$/);
    fleet.inWindow();
  });

  test("plan failover zone-a: infeasible, short exactly load − maxReplicas × ceiling × capacity, critical never shed", async () => {
    fleet.inWindow();
    // Each instance must have had traffic for the shortfall below to be exact (see the comment there).
    assert.deepEqual([...fleet.perInstance.keys()].sort(), ["api-0", "api-1", "api-2"]);
    const result = await fleet.cli("plan", "failover", "zone-a", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as PlanDoc;
    assert.equal(plan.feasible, false, plan.summary);
    assert.deepEqual(plan.targets, ["zone-b", "zone-c"]);
    // maxReplicas defaults to 2 × 3 = 6: the 2 survivors and 4 added instances, all at step 1 (its
    // overflow alone needs far more than 4), so step 1 says max-replicas and no later step adds.
    assert.deepEqual(
      plan.steps.map((s) => s.addInstances.reduce((n, a) => n + a.count, 0)),
      [4, 0, 0, 0],
    );
    assert.deepEqual(
      plan.steps.map((s) => s.shed.length),
      [0, 0, 0, 0],
      "all the traffic is critical: nothing can be shed",
    );
    // At 100 % the 6 instances hold ceiling × capacity each and everything else (whatever the
    // balancer's split, as long as each instance had ≥ 1 request) is short.
    const short = LOAD_RPS - 6 * CEILING * CAPACITY;
    const lastStep = plan.steps[3]!;
    assert.equal(lastStep.withinCeiling, false);
    assert.ok(
      lastStep.reasons.includes(
        `api is short ${Number(short.toFixed(2))} rps: only critical traffic is left to shed, and critical traffic is never shed`,
      ),
      JSON.stringify(lastStep.reasons),
    );
    assert.equal(
      plan.summary,
      `infeasible: api is short ${Number(short.toFixed(2))} rps at step 4 (100 %) after adding every instance allowed and shedding all sheddable and default traffic; critical traffic is never shed`,
    );
    const text = await fleet.cli("plan", "failover", "zone-a");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^failover of zone-a: NOT FEASIBLE — infeasible: api is short/);
    fleet.inWindow();
  });
});

describe("a fleet with shared fate (two replicas on one host, no declared capacity)", () => {
  let box: Sandbox;
  before(async () => {
    box = await sandbox();
    box.up(box.file("fleet.yaml", soloFleetYaml(await freePortRange(4))));
    await readyStatus(box, 2);
  });
  after(async () => {
    await box?.cleanup();
  });

  test("check --strict exits 1 because of the critical single-host and single-zone findings, with their fixes", async () => {
    const port = String(box.apiPort);
    const json = await box.cli(["check", "--json", "--api-port", port]);
    assert.equal(json.code, 0, json.stderr);
    const doc = JSON.parse(json.stdout) as CheckDoc;
    assert.deepEqual(
      doc.findings.map((f) => [f.severity, f.kind, f.service, f.fix]),
      // The fleet's only host and zone are solo's own (unused hosts do not count): both are single.
      [
        [
          "critical",
          "single-host",
          "solo",
          "add a second host to the fleet and place solo's replicas on both",
        ],
        [
          "critical",
          "single-zone",
          "solo",
          "add a second zone to the fleet and place solo's replicas in both",
        ],
      ],
    );
    assert.deepEqual(doc.skipped, [{ service: "solo", reason: "no `capacity.rps` declared" }]);
    assert.ok(
      doc.headroom.every((h) => h.survivesLoss),
      "no capacity declared: nothing overloads",
    );
    const strict = await box.cli(["check", "--strict", "--api-port", port]);
    assert.equal(strict.code, 1, strict.stderr);
    assert.match(strict.stdout, /critical\s+solo\s+single-host/);
  });
});
