/**
 * The fleets and checks of the crash-safety tests (test/e2e/crashSafety*.test.ts): small fleets
 * with fast deploy, failover and probe settings, so one fleet goes through a whole catalogue of
 * crash points within the CI budget.
 */

import assert from "node:assert/strict";
import { type TestContext, test } from "node:test";
import type { CrashFleet, CrashStatus, OperationRun, Served } from "./crashFleet.ts";
import { demoRelease } from "./e2e.ts";
import { waitFor } from "./waitFor.ts";

/**
 * Probes as quick as DEMO_PROBES to see an instance ready, but slow to call one failed: a crash
 * test on a loaded machine must not see an instance restarted for a late probe answer (that
 * restart would be a start nobody planned, and the journal counts starts).
 */
export const CRASH_PROBES = `  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { http: { path: /ready }, interval: 250ms, timeout: 250ms, failureThreshold: 4 }
    liveness: { http: { path: /healthz }, interval: 1s, timeout: 1s, failureThreshold: 5 }`;

/** Service `api`: 2 instances over two zones behind a front port, v1 running, deploys in 2 short steps. */
export function releaseFleetYaml(
  name: string,
  basePort: number,
  port: number,
  releases: string[] = [demoRelease("v1"), demoRelease("v2")],
): string {
  return `version: 1
name: ${name}
defaults:
${CRASH_PROBES}
  restart: { stopGracePeriod: 1s, resetAfter: 1s }
  deploy:
    steps: [50, 100]
    stepDuration: 500ms
    stepDeadline: 60s
    soak: 500ms
    keepStableWarm: false
    analysis: { minRequests: 3, maxErrorRateIncrease: 20%, maxP99Ratio: 10, minP99Increase: 1s }
  slo: { errorRate: 20%, p99: 2s }
services:
  api:
    replicas: 2
    basePort: ${basePort}
    port: ${port}
    placement: { zones: [zone-a, zone-b] }
    release: v1
    releases:
${releases.join("\n")}
`;
}

/** The releases API of a service, the fields read here. */
export interface ReleasesDoc {
  active: string;
  history: { version: string; status: string }[];
  rollouts: {
    id: number;
    kind: string;
    finished: boolean;
    state: { phase: string; from: string; to: string };
  }[];
}

export function releasesOf(fleet: CrashFleet, service = "api"): Promise<ReleasesDoc> {
  return fleet.box.get<ReleasesDoc>(`/v1/services/${service}/releases`);
}

/** The instance names of bank `bank` of a service of `replicas` replicas. */
export function bankInstances(bank: 0 | 1, replicas = 2, service = "api"): string[] {
  return Array.from({ length: replicas }, (_, i) => `${service}-${bank * replicas + i}`);
}

/**
 * The data plane serves exactly `instances`, all on `release`, and sends it all the traffic
 * (no split, or the split gives it everything).
 */
export function servesOnly(instances: string[], release: string): (served: Served) => void {
  return (served) => {
    const active = served.endpoints.filter((e) => !e.draining);
    assert.deepEqual(
      active.map((e) => `${e.instance}@${e.release}`).sort(),
      instances.map((i) => `${i}@${release}`).sort(),
      "the data plane's endpoints",
    );
    if (served.weights !== null) {
      const others = Object.entries(served.weights).filter(([v, w]) => v !== release && w > 0);
      assert.deepEqual(
        others,
        [],
        `weights ${JSON.stringify(served.weights)} send traffic away from ${release}`,
      );
      assert.ok((served.weights[release] ?? 0) > 0, `weights ${JSON.stringify(served.weights)}`);
    }
  };
}

/** The names of the instances of `release`, as the status shows them. */
export function instancesOn(status: CrashStatus, release: string): string[] {
  return status.services
    .flatMap((s) => s.instances)
    .filter((i) => i.release === release)
    .map((i) => i.name);
}

/** Wait until no rollout of the service is in progress; returns the releases document. */
export async function rolloutsFinished(
  fleet: CrashFleet,
  what: string,
  timeoutMs = 45_000,
): Promise<ReleasesDoc> {
  return await waitFor(
    async () => {
      const doc = await releasesOf(fleet).catch(() => null);
      return doc?.rollouts.every((r) => r.finished) ? doc : null;
    },
    { timeoutMs, what },
  );
}

/**
 * Declares the tests of one catalogue: `runs` tests, each one operation run through at most a
 * few crashes (`run(n, t)` arms `armed`, the boundaries not crashed at yet; a test finding none
 * left is skipped), then one that checks every boundary was crashed at. Splitting the catalogue
 * over several tests keeps each within the suite's per-test timeout on a slow machine.
 */
export function catalogueTests(
  name: string,
  catalogue: readonly string[],
  runs: number,
  run: (n: number, armed: Set<string>, t: TestContext) => Promise<void>,
): void {
  const armed = new Set<string>(catalogue);
  for (let n = 1; n <= runs; n++) {
    test(`${name} ${n}, through a controller crash at each boundary armed`, async (t) => {
      if (armed.size === 0) {
        t.skip("every boundary of the catalogue has been crashed at");
        return;
      }
      await run(n, armed, t);
    });
  }
  test(`${name}: the controller was crashed at every boundary of the catalogue`, () => {
    assert.deepEqual([...armed], [], `boundaries never crossed in ${runs} runs`);
  });
}

/** Bank 0 or 1 of `api-N` names (2 replicas). */
export function bankOf(instances: string[]): 0 | 1 {
  return Number(instances[0]!.split("-").at(-1)) < 2 ? 0 : 1;
}

/** "what, crashed at a, b" for assertion messages; the run's timings as a diagnostic. */
export function describeRun(run: OperationRun, t: TestContext): string {
  const context = `${run.what}, crashed at ${run.crashes.map((c) => c.boundary).join(", ") || "nothing"}`;
  t.diagnostic(
    `${context}: ${run.ms} ms; next controller up in ${run.crashes.map((c) => `${c.restartMs} ms`).join(", ")}`,
  );
  return context;
}
