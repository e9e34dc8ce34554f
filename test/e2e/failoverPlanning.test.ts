/**
 * Failover planning on a live fleet: shared-fate findings, static stability from measured load,
 * and a stepwise plan for losing a zone — read-only, through the real CLI and controller.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { APP, freePort, freePortRange, NODE, type Sandbox, sandbox, waitForServing } from "../helpers/e2e.ts";

function fleetYaml(apiBase: number, apiFront: number, soloBase: number): string {
  const release = [
    "      v1:",
    `        command: ${JSON.stringify(NODE)}`,
    `        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]`,
  ].join("\n");
  return `version: 1
name: failover-e2e
hosts:
  host-a: { zone: zone-a }
  host-b: { zone: zone-b }
  host-c: { zone: zone-c }
defaults:
  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { http: { path: /ready }, interval: 200ms, timeout: 150ms }
services:
  api:
    replicas: 3
    basePort: ${apiBase}
    port: ${apiFront}
    capacity: { rps: 40, targetUtilization: 80% }
    release: v1
    releases:
${release}
  solo:
    replicas: 2
    basePort: ${soloBase}
    placement: { hosts: [host-a] }
    release: v1
    releases:
${release}
`;
}

describe("failover planning on a live fleet", () => {
  let box: Sandbox;
  let front: number;
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);

  before(async () => {
    box = await sandbox();
    front = await freePort();
    box.up(box.file("fleet.yaml", fleetYaml(await freePortRange(6), front, await freePortRange(4))));
    await waitForServing(front, "api serving");
    // About 60 rps for a few seconds: 20 rps per instance, half of its declared 40.
    const end = Date.now() + 4_000;
    const sent: Promise<unknown>[] = [];
    while (Date.now() < end) {
      for (let i = 0; i < 6; i++) {
        sent.push(
          fetch(`http://127.0.0.1:${front}/`, {
            headers: { "x-homeostat-criticality": i % 3 === 0 ? "sheddable" : "default" },
          })
            .then((r) => r.arrayBuffer())
            .catch(() => undefined),
        );
      }
      await new Promise((r) => setTimeout(r, 100)); // pacing of the load, not synchronisation
    }
    await Promise.all(sent);
  });
  after(async () => {
    await box.cleanup();
  });

  test("check: shared fate is found, and each zone's loss is judged against the ceiling", async () => {
    const result = await cli("check", "--json");
    assert.equal(result.code, 0, result.stderr);
    const doc = JSON.parse(result.stdout) as {
      findings: { severity: string; kind: string; service: string; fix: string }[];
      headroom: { zone: string; survivesLoss: boolean; survivorPeakUtilization: number }[];
      skipped: { service: string }[];
    };
    const solo = doc.findings.filter((f) => f.service === "solo");
    assert.ok(
      solo.some((f) => f.kind === "single-host"),
      JSON.stringify(doc.findings),
    );
    assert.ok(solo.every((f) => f.fix.length > 0));
    assert.equal(doc.findings.filter((f) => f.service === "api" && f.severity === "critical").length, 0);
    assert.deepEqual(
      doc.headroom.map((h) => h.zone),
      ["zone-a", "zone-b", "zone-c"],
    );
    assert.deepEqual(
      doc.skipped.map((s) => s.service),
      ["solo"],
      "no declared capacity, no planning",
    );
    const strict = await cli("check", "--strict");
    assert.equal(
      strict.code,
      doc.findings.some((f) => f.severity === "critical") || doc.headroom.some((h) => !h.survivesLoss)
        ? 1
        : 0,
    );
  });

  test("plan failover --json: steps with projected utilization per target and reasons, and feasibility", async () => {
    const result = await cli("plan", "failover", "zone-a", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as {
      domain: string;
      feasible: boolean;
      targets: string[];
      steps: {
        projected: { instance: string; zone: string; utilization: number }[];
        reasons: string[];
        peakUtilization: number;
      }[];
    };
    assert.equal(plan.domain, "zone-a");
    assert.equal(typeof plan.feasible, "boolean");
    assert.ok(!plan.targets.includes("zone-a"), "never a target in the failed zone");
    assert.ok(plan.steps.length >= 1);
    for (const step of plan.steps) {
      assert.ok(step.projected.length > 0);
      assert.ok(step.projected.every((p) => p.zone !== "zone-a" && p.utilization >= 0));
      assert.ok(step.reasons.length > 0);
    }
    const unknown = await cli("plan", "failover", "zone-x");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no zone zone-x/);
    const text = await cli("plan", "failover", "zone-b");
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^failover of zone-b: (FEASIBLE|NOT FEASIBLE)/);
  });
});
