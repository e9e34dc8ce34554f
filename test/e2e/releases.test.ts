/**
 * Releases end to end: a progressive deploy of a faulty release rolls back on its own under load,
 * a good one becomes proven, and rollbacks that cannot undo the world are refused with an
 * alternative — through the real CLI, controller, data plane and instances.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  DEMO_PROBES,
  demoRelease,
  freePort,
  freePortRange,
  type Sandbox,
  sandbox,
  waitForServing,
} from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface Rollout {
  id: number;
  kind: string;
  finished: boolean;
  state: { phase: string; from: string; to: string; reason: string | null; failedAt: number | null };
}
interface Releases {
  active: string;
  history: { version: string; status: string; evidence: unknown }[];
  rollouts: Rollout[];
}

/** The deploy's traffic steps (% to the new release) and v2-bad's injected error rate. */
const STEPS = [10, 50, 100];
const BAD_ERROR_RATE = 0.5;

function fleetYaml(basePort: number, port: number): string {
  return `version: 1
name: releases-e2e
datastores:
  orders-db: { initialVersion: 5 }
defaults:
${DEMO_PROBES}
  restart: { stopGracePeriod: 2s, resetAfter: 2s }
  deploy:
    steps: [${STEPS.join(", ")}]
    stepDuration: 2s
    stepDeadline: 15s
    soak: 3s
    analysis: { minRequests: 20, maxErrorRateIncrease: 2%, maxP99Ratio: 3, minP99Increase: 200ms }
  slo: { errorRate: 2%, p99: 1s }
services:
  api:
    replicas: 2
    basePort: ${basePort}
    port: ${port}
    placement: { zones: [zone-a, zone-b] }
    release: v1
    releases:
${demoRelease("v1", {}, ['requires: { schemas: { orders-db: ">=5 <6" } }', 'provides: { api: "1.0.0" }'])}
${demoRelease("v2-bad", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) }, ['requires: { schemas: { orders-db: ">=5 <6" } }', 'provides: { api: "1.0.0" }'])}
${demoRelease("v3-migrates", {}, [
  'requires: { schemas: { orders-db: ">=6" } }',
  'provides: { api: "1.1.0" }',
  "migrations: [{ datastore: orders-db, from: 5, to: 6, reversible: false }]",
])}
${demoRelease("v4-future", {}, ['requires: { schemas: { orders-db: ">=9" } }'])}
${demoRelease("v5-bad-migrates", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) }, [
  'requires: { schemas: { orders-db: ">=7" } }',
  "migrations: [{ datastore: orders-db, from: 6, to: 7, reversible: false }]",
])}
`;
}

/**
 * Open-loop GETs at about `rps` until stopped; each outcome with its send time, the version that
 * answered (200s) or the app's fault that failed it (the demo app's injected 500s name it).
 */
function startLoad(port: number, rps: number) {
  const records: { at: number; status: number; version: string | null; fault: string | null }[] = [];
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    if (!running || records.length > 100_000) return;
    const at = Date.now();
    const p = fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) })
      .then(async (r) => {
        const body = (await r.json().catch(() => ({}))) as { version?: string; fault?: string };
        records.push({ at, status: r.status, version: body.version ?? null, fault: body.fault ?? null });
      })
      .catch(() => {
        records.push({ at, status: 0, version: null, fault: null });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / rps);
  return {
    records,
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all([...inFlight]);
    },
  };
}

describe("releases, deploys and rollbacks", () => {
  let box: Sandbox;
  let port: number;
  let load: ReturnType<typeof startLoad>;
  const api = (path: string) => `/v1/services/api${path}`;
  const cli = (...args: string[]) => box.cli([...args, "--api-port", String(box.apiPort)]);
  const releases = async () => await box.get<Releases>(api("/releases"));

  before(async () => {
    box = await sandbox();
    port = await freePort();
    // Two banks: 2 × replicas ports.
    const basePort = await freePortRange(4);
    box.up(box.file("fleet.yaml", fleetYaml(basePort, port)));
    await waitForServing(port, "the proxy serving v1");
    load = startLoad(port, 40);
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("a deploy that cannot run in today's world is refused up front, with the reason", async () => {
    const result = await cli("deploy", "api", "v4-future");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs orders-db schema >=9, which is at 5/);
    assert.equal((await releases()).rollouts.length, 0, "nothing started");
  });

  test("a faulty release rolls back on its own; errors served stay within the canary's share", async (t) => {
    const started = Date.now();
    const deploy = await cli("deploy", "api", "v2-bad");
    assert.equal(deploy.code, 0, deploy.stderr);
    const rollout = await waitFor(
      async () => (await releases()).rollouts.find((r) => r.state.to === "v2-bad" && r.finished),
      { timeoutMs: 45_000, what: "the v2-bad deploy to finish" },
    );
    assert.equal(rollout.state.phase, "rolled-back");
    // It failed on the first step: the canary was meant to take STEPS[0] % of the traffic.
    const weight = STEPS[0]! / 100;
    assert.match(rollout.state.reason ?? "", new RegExp(`^step 1 \\(${STEPS[0]} %\\) failed: error rate`));
    const history = await releases();
    assert.equal(history.active, "v1");
    assert.equal(history.history.find((h) => h.version === "v2-bad")?.status, "failed");

    const failedAt = rollout.state.failedAt!;
    // Give requests sent just before the verdict time to complete, then read the client's view.
    await waitFor(() => load.records.some((r) => r.at > failedAt + 2_000), {
      what: "load after the verdict",
    });
    const { events } = await box.get<{ events: { type: string; at: number; message: string }[] }>(
      "/v1/events?limit=3000",
    );
    const firstStep = events.find((e) => e.type === "deploy.step" && e.message.includes("v2-bad"));
    assert.ok(firstStep, "step 1 was reached");
    assert.ok(firstStep.at >= started && firstStep.at <= failedAt, "step 1 began within the deploy");

    // The canary's step, as the client saw it. 500s are not retried (src/traffic/proxy/
    // retryPolicy.ts: only connect errors, resets, timeouts and 502/503/504 are), so each injected
    // failure reaches the client, and which release served a request is known from its answer.
    const canary = load.records.filter((r) => r.at >= firstStep.at && r.at <= failedAt);
    const toBad = canary.filter((r) => r.version === "v2-bad" || r.fault === "errorRate");
    const errors = canary.filter((r) => r.status !== 200);
    assert.ok(canary.length >= 40, `${canary.length} requests during the canary step`);
    assert.ok(toBad.length > 0, "the canary took traffic");
    // Every error is one v2-bad injected: v1 failed nothing, and nothing failed in the proxy.
    assert.deepEqual(
      errors.filter((r) => r.status !== 500 || r.fault !== "errorRate"),
      [],
      "failures other than v2-bad's injected ones",
    );
    // Random weighted choice makes the canary's share binomial around the step's weight: with the
    // ~200 requests the step takes at 40 rps, twice the weight is > 4 σ away. A canary given 30 %
    // fails this.
    const share = toBad.length / canary.length;
    t.diagnostic(
      `canary step: ${canary.length} requests, ${toBad.length} to v2-bad, ${errors.length} failed`,
    );
    assert.ok(
      share <= 2 * weight,
      `the canary served ${toBad.length} of ${canary.length} requests (${(100 * share).toFixed(1)} %) ` +
        `on a ${STEPS[0]} % step`,
    );
    // So errors stay within the canary's share: weight × error rate (5 %), at most twice that.
    assert.ok(
      errors.length / canary.length <= 2 * weight * BAD_ERROR_RATE,
      `${errors.length} of ${canary.length} failed during the canary step ` +
        `(expected about ${100 * weight * BAD_ERROR_RATE} %)`,
    );
    // Before step 1 the canary is ready but takes no traffic (weights 100/0 from the deploy's start).
    const early = load.records.filter((r) => r.version === "v2-bad" && r.at < firstStep.at - 100);
    assert.equal(early.length, 0, `${early.length} requests reached v2-bad before step 1`);
    const lastBad = Math.max(...load.records.filter((r) => r.version === "v2-bad").map((r) => r.at));
    assert.ok(
      lastBad - failedAt < 2_000,
      `a v2-bad answer was sent ${lastBad - failedAt}ms after the failing verdict`,
    );
    const afterwards = load.records.filter((r) => r.at > failedAt + 1_000);
    assert.ok(
      afterwards.every((r) => r.version === "v1" && r.status === 200),
      "all traffic back on v1",
    );
  });

  test("a good release goes 10 → 50 → 100 %, soaks, and becomes proven with evidence", async () => {
    const deploy = await cli("deploy", "api", "v3-migrates");
    assert.equal(deploy.code, 0, deploy.stderr);
    const rollout = await waitFor(
      async () => (await releases()).rollouts.find((r) => r.state.to === "v3-migrates" && r.finished),
      { timeoutMs: 60_000, what: "the v3 deploy to finish" },
    );
    assert.equal(rollout.state.phase, "proven", rollout.state.reason ?? "");
    const history = await releases();
    assert.equal(history.active, "v3-migrates");
    const entry = history.history.find((h) => h.version === "v3-migrates");
    assert.equal(entry?.status, "proven");
    assert.ok(entry?.evidence, "evidence stored");
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        const body = (await r.json()) as { version: string };
        return body.version === "v3-migrates";
      },
      { what: "v3 serving" },
    );
  });

  test("plan rollback --json: refused after an irreversible migration, with every check and an alternative", async () => {
    const result = await cli("plan", "rollback", "api", "--to", "v1", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as {
      decision: string;
      checks: { name: string; ok: boolean; detail: string; severity: string }[];
      alternative?: { kind: string; version: string; description: string };
    };
    assert.equal(plan.decision, "refuse");
    assert.deepEqual(plan.checks.map((c) => c.name).sort(), [
      "compatibility",
      "drift",
      "evidence",
      "migrations",
      "security",
    ]);
    for (const check of plan.checks) {
      assert.equal(typeof check.ok, "boolean");
      assert.equal(typeof check.detail, "string");
    }
    const migrations = plan.checks.find((c) => c.name === "migrations")!;
    assert.equal(migrations.ok, false);
    assert.equal(migrations.severity, "blocking");
    assert.match(migrations.detail, /irreversible|orders-db/);
    assert.ok(plan.alternative, "a refusal proposes an alternative");

    const refused = await cli("rollback", "api", "--to", "v1");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HS_ROLLBACK_REFUSED/);
    const noReason = await cli("rollback", "api", "--to", "v1", "--force");
    assert.equal(noReason.code, 1);
    assert.match(noReason.stderr, /--force needs --reason/);
    assert.equal((await releases()).active, "v3-migrates", "nothing changed");
  });

  test("a forced rollback is carried out and audited", async () => {
    const forced = await cli(
      "rollback",
      "api",
      "--to",
      "v1",
      "--force",
      "--reason",
      "drill: v1 tolerates schema 6",
    );
    assert.equal(forced.code, 0, forced.stderr);
    await waitFor(async () => (await releases()).active === "v1", {
      timeoutMs: 30_000,
      what: "v1 active again",
    });
    const { events } = await box.get<{ events: { type: string; message: string }[] }>(
      "/v1/events?limit=2000",
    );
    const started = events.find((e) => e.type === "rollback.started");
    assert.match(started?.message ?? "", /FORCED .*drill: v1 tolerates schema 6/);
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        const body = (await r.json()) as { version: string };
        return body.version === "v1";
      },
      { what: "v1 serving again" },
    );
  });

  test("an automatic rollback the safety checks refuse is held for an operator, not carried out blindly", async () => {
    // v1 runs (forced) on schema 6; v5 migrates to 7 irreversibly and then fails its canary:
    // going back to v1 (which needs < 6) would make things worse.
    const deploy = await cli("deploy", "api", "v5-bad-migrates");
    assert.equal(deploy.code, 0, deploy.stderr);
    const refusedEvent = await waitFor(
      async () => {
        const { events } = await box.get<{ events: { type: string; message: string }[] }>(
          "/v1/events?limit=3000",
        );
        return events.find((e) => e.type === "deploy.rollback-refused");
      },
      { timeoutMs: 45_000, what: "the automatic rollback to be refused" },
    );
    assert.match(refusedEvent.message, /migrations|compatibility/);
    const held = (await releases()).rollouts.find((r) => r.state.to === "v5-bad-migrates");
    assert.equal(held?.finished, false, "the deploy waits for a decision");
    assert.equal((await releases()).active, "v1");

    const plan = JSON.parse((await cli("plan", "rollback", "api", "--json")).stdout) as {
      decision: string;
      to: string;
    };
    assert.equal(plan.decision, "refuse");
    assert.equal(plan.to, "v1");

    const forced = await cli("rollback", "api", "--force", "--reason", "drill: accept v1 on schema 7");
    assert.equal(forced.code, 0, forced.stderr);
    const done = await waitFor(
      async () => (await releases()).rollouts.find((r) => r.state.to === "v5-bad-migrates" && r.finished),
      { timeoutMs: 30_000, what: "the held deploy to finish" },
    );
    assert.equal(done.state.phase, "rolled-back");
    assert.equal((await releases()).active, "v1");
  });
});
