/**
 * Recovery states, derived from a snapshot: each state from its defining observations, the
 * roll-up to service, zone and fleet, and partial recoveries named (never "healthy").
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NO_INVARIANTS, uncheckedVerdict } from "../../src/verify/invariants.ts";
import {
  deriveRecovery,
  type IncidentFacts,
  type InstanceFacts,
  type ServiceFacts,
} from "../../src/verify/recoveryState.ts";
import type { GateVerdict } from "../../src/verify/verificationGate.ts";

const PASS: GateVerdict = {
  passed: true,
  converged: { ok: true, detail: "converged" },
  slo: { ok: true, detail: "SLO held" },
  invariants: { ok: true, detail: "security invariants hold" },
  blocking: [],
};

function incident(overrides: Partial<IncidentFacts> = {}): IncidentFacts {
  return {
    id: 4,
    kind: "exited",
    status: "open",
    detectedAt: 1_000,
    actionStartedAt: null,
    mitigatedAt: null,
    verifiedAt: null,
    detail: "exited with signal SIGKILL",
    ...overrides,
  };
}

function instance(name: string, overrides: Partial<InstanceFacts> = {}): InstanceFacts {
  return {
    name,
    zone: `zone-${name.slice(-1)}`,
    status: "ready",
    statusReason: "readiness: passing",
    release: "v1",
    drift: [],
    openIncident: null,
    recentlyVerified: null,
    ...overrides,
  };
}

function service(instances: InstanceFacts[], overrides: Partial<ServiceFacts> = {}): ServiceFacts {
  return {
    name: "api",
    replicas: instances.length,
    ready: instances.filter((i) => i.status === "ready").length,
    runningReleases: [...new Set(instances.flatMap((i) => i.release ?? []))],
    instances,
    openIncidents: [],
    recentlyVerified: [],
    invariants: NO_INVARIANTS,
    gate: PASS,
    ...overrides,
  };
}

const derive = (s: ServiceFacts, zones = []) => deriveRecovery({ services: [s], zones });

describe("instance states along a kill and its recovery", () => {
  const steps: [string, InstanceFacts, string][] = [
    ["failing", instance("api-0", { status: "exited", openIncident: incident() }), "no action under way"],
    [
      "recovering",
      instance("api-0", { status: "starting", openIncident: incident({ actionStartedAt: 1_010 }) }),
      "recovering from incident #4",
    ],
    [
      "recovered-unverified",
      instance("api-0", { openIncident: incident({ actionStartedAt: 1_010, mitigatedAt: 1_400 }) }),
      "mitigated, not verified yet",
    ],
    [
      "verified",
      instance("api-0", { recentlyVerified: incident({ status: "closed", verifiedAt: 5_000 }) }),
      "incident #4 verified",
    ],
    ["healthy", instance("api-0"), ""],
  ];
  for (const [state, facts, reason] of steps) {
    it(`${state}`, () => {
      const report = derive(service([facts, instance("api-1")]));
      const r = report.instances.get("api-0")!;
      assert.equal(r.state, state);
      if (reason)
        assert.ok(
          r.reasons.some((x) => x.includes(reason)),
          r.reasons.join("\n"),
        );
      else assert.deepEqual(r.reasons, []);
      // The service shows its worst instance.
      assert.equal(report.services.get("api")!.state, state === "failing" ? "failing" : state);
      assert.equal(report.fleet.state, report.services.get("api")!.state);
    });
  }

  it("recovered-unverified says what the gate waits for", () => {
    const gate: GateVerdict = {
      ...PASS,
      passed: false,
      converged: { ok: false, detail: "not converged: api-1 on an old config of v1" },
      blocking: ["not converged: api-1 on an old config of v1"],
    };
    const r = derive(
      service([instance("api-0", { openIncident: incident({ mitigatedAt: 1_400 }) }), instance("api-1")], {
        gate,
      }),
    ).instances.get("api-0")!;
    assert.equal(r.state, "recovered-unverified");
    assert.ok(r.reasons.includes("api-0: waits for not converged: api-1 on an old config of v1"));
  });
});

describe("partial recoveries are named and never healthy", () => {
  it("one instance on an old config: old-config partial, instance and service degraded", () => {
    const drift = [{ kind: "config" as const, release: "v1", launched: "aaaa", desired: "bbbb" }];
    const report = derive(service([instance("api-0"), instance("api-1", { drift })]));
    assert.equal(report.instances.get("api-0")!.state, "healthy");
    assert.equal(report.instances.get("api-1")!.state, "degraded");
    assert.equal(report.services.get("api")!.state, "degraded");
    assert.equal(report.fleet.state, "degraded");
    assert.deepEqual(
      report.partial.map((p) => [p.kind, p.service, p.instances]),
      [["old-config", "api", ["api-1"]]],
    );
    assert.match(report.partial[0]!.detail, /api-1 on an old config of v1/);
  });

  it("old secrets, mixed releases and ready below replicas are each named", () => {
    const secrets = [{ kind: "secrets" as const, changed: [{ name: "db", launched: "1", desired: "2" }] }];
    const report = derive(
      service(
        [
          instance("api-0", { drift: secrets }),
          instance("api-1", { release: "v2" }),
          instance("api-2", { status: "unready", statusReason: "readiness: 503" }),
        ],
        { replicas: 3 },
      ),
    );
    assert.deepEqual(report.partial.map((p) => p.kind).sort(), [
      "mixed-releases",
      "old-secrets",
      "ready-below-replicas",
    ]);
    assert.equal(report.services.get("api")!.state, "degraded");
  });

  it("a half-shifted zone is partial and degrades the zone and the fleet; a zone keeping all is not", () => {
    const report = deriveRecovery({
      services: [service([instance("api-a"), instance("api-b")])],
      zones: [
        { zone: "zone-a", share: 0.5, phase: "evacuating", reason: "zone-a probes failing" },
        { zone: "zone-b", share: 1, phase: null, reason: null },
      ],
    });
    assert.deepEqual(
      report.partial.map((p) => [p.kind, p.zone]),
      [["half-shifted-zone", "zone-a"]],
    );
    assert.equal(report.zones.get("zone-a")!.state, "degraded");
    assert.equal(report.zones.get("zone-b")!.state, "healthy");
    assert.equal(report.fleet.state, "degraded");
  });

  it("invariants not checked yet degrade the service; a broken one makes it failing", () => {
    const unchecked = derive(service([instance("api-0")], { invariants: uncheckedVerdict() }));
    assert.equal(unchecked.services.get("api")!.state, "degraded");
    const broken = derive(
      service([instance("api-0")], {
        invariants: {
          ok: false,
          checked: true,
          lastCheckedAt: 1,
          broken: [
            {
              invariant: "protected-path:GET /admin",
              kind: "protected-path",
              instance: "api-0",
              detail: "GET /admin answered 200 without credentials on api-0",
              since: 1,
            },
          ],
        },
      }),
    );
    assert.equal(broken.services.get("api")!.state, "failing");
    assert.ok(broken.services.get("api")!.reasons.some((r) => r.includes("invariant broken")));
  });

  it("a rollback is recovering until its target serves, then recovered-unverified until verified", () => {
    const rollback = incident({ kind: "rollback", detail: "rollback v2 → v1: asked" });
    const running = derive(service([instance("api-0")], { openIncidents: [rollback] }));
    assert.equal(running.services.get("api")!.state, "recovering");
    const served = derive(
      service([instance("api-0")], { openIncidents: [{ ...rollback, mitigatedAt: 2_000 }] }),
    );
    assert.equal(served.services.get("api")!.state, "recovered-unverified");
    const done = derive(
      service([instance("api-0")], {
        recentlyVerified: [{ ...rollback, status: "closed", mitigatedAt: 2_000, verifiedAt: 9_000 }],
      }),
    );
    assert.equal(done.services.get("api")!.state, "verified");
  });
});
