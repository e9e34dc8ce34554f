/**
 * Security invariants against real processes: the demo app's protected path and policy endpoint,
 * the anonymous probe, and the monitor's verdicts and incidents over a real state store.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { INVARIANT_INCIDENT_KIND, InvariantMonitor } from "../../src/controller/invariantMonitor.ts";
import type { Reason } from "../../src/decide/reasons.ts";
import type { ObservedInstance } from "../../src/decide/snapshot.ts";
import { policyHashOf, probeInvariants } from "../../src/observe/invariantProbe.ts";
import { parseFleet } from "../../src/spec/index.ts";
import type { FleetSpec, InvariantsSpec } from "../../src/spec/model.ts";
import { StateStore } from "../../src/store/index.ts";
import { http, httpJson, startDemoApp } from "../examples/demoApp.ts";
import { freePort, freePortRange } from "../helpers/e2e.ts";
import { waitFor } from "../helpers/waitFor.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

const SPEC: InvariantsSpec = {
  protectedPaths: [{ path: "/admin", method: "GET", expect: [401, 403] }],
  policyHash: { path: "/policy" },
  intervalMs: 200,
  timeoutMs: 200,
};

describe("demo app: protected path and policy endpoint", () => {
  test("/admin refuses without credentials (401), with a wrong one (403), admits its token (200)", async (t) => {
    const app = await startDemoApp(t, { env: { ADMIN_TOKEN: "s3cret" } });
    const anonymous = await http(app.port, "/admin");
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.headers["www-authenticate"]), /Bearer/);
    assert.equal((await http(app.port, "/admin/users")).status, 401);
    const url = `http://127.0.0.1:${app.port}/admin`;
    const wrong = await fetch(url, { headers: { authorization: "Bearer nope" } });
    await wrong.arrayBuffer();
    assert.equal(wrong.status, 403);
    const right = await fetch(url, { headers: { authorization: "Bearer s3cret" } });
    assert.equal(right.status, 200);
    assert.equal(((await right.json()) as { admin: boolean }).admin, true);
  });

  test("AUTH_DISABLED=1 fails open: /admin answers 200 to anyone", async (t) => {
    const app = await startDemoApp(t, { env: { AUTH_DISABLED: "1" } });
    assert.equal((await http(app.port, "/admin")).status, 200);
  });

  test("/policy reports the policy hash; POLICY_HASH overrides it; the fault API changes it live", async (t) => {
    const plain = await startDemoApp(t);
    const forced = await startDemoApp(t, { env: { POLICY_HASH: "custom-1", APP_ALLOW_FAULT_API: "1" } });
    const base = await httpJson<{ hash: string }>(plain.port, "/policy");
    assert.equal(base.status, 200);
    assert.match(base.json.hash, /^[0-9a-f]{64}$/);
    assert.equal((await httpJson<{ hash: string }>(forced.port, "/policy")).json.hash, "custom-1");
    // Live: another hash, then the guard off, then both back.
    const changed = await httpJson<{ hash: string }>(forced.port, "/policy", {
      method: "POST",
      body: JSON.stringify({ hash: "custom-2", authDisabled: true }),
    });
    assert.equal(changed.json.hash, "custom-2");
    assert.equal((await http(forced.port, "/admin")).status, 200);
    await http(forced.port, "/policy", {
      method: "POST",
      body: JSON.stringify({ hash: null, authDisabled: false }),
    });
    assert.equal((await httpJson<{ hash: string }>(forced.port, "/policy")).json.hash, "custom-1");
    assert.equal((await http(forced.port, "/admin")).status, 401);
    // Without the fault API nothing changes; a bad body changes nothing either.
    const refused = await http(plain.port, "/policy", { method: "POST", body: '{"authDisabled":true}' });
    assert.equal(refused.status, 403);
    assert.equal((await http(plain.port, "/admin")).status, 401);
    const bad = await http(forced.port, "/policy", { method: "POST", body: '{"hash":"has space"}' });
    assert.equal(bad.status, 400);
    assert.equal((await httpJson<{ hash: string }>(forced.port, "/policy")).json.hash, "custom-1");
  });

  test("a bad AUTH_DISABLED or POLICY_HASH stops the app with exit code 2", async (t) => {
    const envs: Record<string, string>[] = [{ AUTH_DISABLED: "maybe" }, { POLICY_HASH: "two words" }];
    for (const env of envs) {
      const { spawnDemoApp, exitWithin } = await import("../examples/demoApp.ts");
      const app = spawnDemoApp(t, { env });
      const exit = await exitWithin(app, 15_000);
      assert.equal(exit.code, 2, JSON.stringify(env));
      assert.match(app.stderr(), new RegExp(Object.keys(env)[0]!));
    }
  });
});

describe("probeInvariants", () => {
  test("requests without credentials and reads the hash", async (t) => {
    const app = await startDemoApp(t, { env: { POLICY_HASH: "p-1", ADMIN_TOKEN: "x" } });
    const seen = await probeInvariants({ instance: "api-0", port: app.port, release: "v1" }, SPEC);
    assert.deepEqual(seen.protectedPaths, [
      { path: "/admin", method: "GET", expect: [401, 403], status: 401 },
    ]);
    assert.deepEqual(seen.policy, { path: "/policy", hash: "p-1", status: 200 });
    assert.equal(seen.release, "v1");
  });

  test("a fail-open guard is seen as 200", async (t) => {
    const app = await startDemoApp(t, { env: { AUTH_DISABLED: "1" } });
    const seen = await probeInvariants({ instance: "api-0", port: app.port }, SPEC);
    assert.equal(seen.protectedPaths[0]?.status, 200);
  });

  test("nothing listening: no status (unchecked), within the timeout", async () => {
    const port = await freePort();
    const started = performance.now();
    const seen = await probeInvariants({ instance: "api-0", port, expectedPolicyHash: "h" }, SPEC);
    assert.ok(performance.now() - started < 2_000);
    assert.equal(seen.protectedPaths[0]?.status, null);
    assert.match(seen.protectedPaths[0]?.error ?? "", /ECONNREFUSED/);
    assert.equal(seen.policy?.hash, null);
    assert.equal(seen.policy?.status, undefined);
    assert.equal(seen.policy?.expected, "h");
  });

  test("policyHashOf reads JSON { hash } or one token of text, nothing else", () => {
    assert.equal(policyHashOf('{"hash":"abc"}\n', "application/json"), "abc");
    assert.equal(policyHashOf("abc\n", "text/plain"), "abc");
    assert.equal(policyHashOf('"abc"', "application/json"), "abc");
    assert.equal(policyHashOf('{"policy":"abc"}', "application/json"), null);
    assert.equal(policyHashOf("<html>\n<body>error</body></html>", "text/html"), null);
    assert.equal(policyHashOf("", "text/plain"), null);
    assert.equal(policyHashOf("{not json", "application/json"), null);
  });
});

/** A fleet of one service `api` with `replicas` slots from `basePort`, declaring invariants. */
function fleetOf(basePort: number, replicas: number): FleetSpec {
  const yaml = `version: 1
services:
  api:
    replicas: ${replicas}
    basePort: ${basePort}
    release: v1
    restart: { resetAfter: 600ms }
    invariants:
      protectedPaths: [{ path: /admin }]
      policyHash: { path: /policy }
      interval: 200ms
      timeout: 200ms
    releases:
      v1: { command: node }
`;
  const result = parseFleet(yaml, "/tmp/fleet.yaml");
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.fleet;
}

function ready(name: string, slot: number, startedAt = 1): ObservedInstance {
  return {
    name,
    service: "api",
    slot,
    release: "v1",
    runtime: "running",
    health: { state: "ready", since: startedAt } as ObservedInstance["health"],
    startedAt,
    lastExit: null,
  };
}

describe("InvariantMonitor", () => {
  test("fail-open auth: verdict broken, incident and events; restored, then closed after the window", async (t) => {
    const basePort = await freePortRange(2);
    const common = { APP_ALLOW_FAULT_API: "1" };
    await startDemoApp(t, { args: ["--port", String(basePort)], env: common });
    const second = await startDemoApp(t, { args: ["--port", String(basePort + 1)], env: common });
    const store = StateStore.open(tempStateDir(t));
    t.after(() => store.close());
    const events: { type: string; why: Reason; data: Record<string, unknown> }[] = [];
    let instances = [ready("api-0", 0)];
    const monitor = new InvariantMonitor({
      fleet: fleetOf(basePort, 2),
      store,
      instances: () => instances,
      note: (type, why, data) => events.push({ type, why, data }),
      pollMs: 50,
    });
    t.after(() => monitor.stop());
    assert.deepEqual(monitor.forService("api"), {
      ok: false,
      checked: false,
      broken: [],
      lastCheckedAt: null,
    });
    assert.equal(monitor.forService("nope").ok, false);
    monitor.start();
    await waitFor(() => monitor.forService("api").ok, { what: "a first complete round" });

    // A second instance comes up: stale until probed, then ok again.
    instances = [ready("api-0", 0), ready("api-1", 1)];
    await waitFor(() => !monitor.forService("api").checked, {
      what: "the verdict marked stale",
      intervalMs: 5,
    });
    await waitFor(() => monitor.forService("api").ok, { what: "ok with two instances" });

    await http(second.port, "/policy", { method: "POST", body: '{"authDisabled":true}' });
    const broken = await waitFor(
      () => {
        const v = monitor.forService("api");
        return v.broken.length > 0 ? v : null;
      },
      { what: "the fail-open guard seen" },
    );
    assert.equal(broken.ok, false);
    assert.deepEqual(
      broken.broken.map((b) => [b.kind, b.instance]),
      [["protected-path", "api-1"]],
    );
    const brokenEvent = events.find((e) => e.type === "invariant.broken");
    assert.equal(brokenEvent?.why.code, "auth-not-enforced");
    assert.deepEqual(brokenEvent?.data.instances, ["api-1"]);
    const [incident] = store.listIncidents({ status: "open" });
    assert.equal(incident?.kind, INVARIANT_INCIDENT_KIND);
    assert.equal(incident?.reason, "auth-not-enforced");
    assert.equal(incident?.service, "api");
    assert.equal(incident?.instance, "api/protected-path:GET /admin");
    assert.match(incident?.detail ?? "", /GET \/admin answered 200 without credentials on api-1/);
    // Still broken on later rounds: one incident, not one per round.
    const lastChecked = broken.lastCheckedAt ?? 0;
    await waitFor(() => (monitor.forService("api").lastCheckedAt ?? 0) > lastChecked, {
      what: "another round",
    });
    assert.equal(store.listIncidents().length, 1);
    assert.equal(events.filter((e) => e.type === "invariant.broken").length, 1);

    await http(second.port, "/policy", { method: "POST", body: '{"authDisabled":false}' });
    await waitFor(() => events.some((e) => e.type === "invariant.restored"), { what: "invariant.restored" });
    assert.equal(monitor.forService("api").ok, true);
    const mitigated = store.getIncident(incident!.id);
    assert.equal(mitigated?.status, "open");
    assert.ok(mitigated?.mitigatedAt);
    await waitFor(() => store.getIncident(incident!.id)?.status === "closed", {
      what: "the incident closed",
    });
    const closed = store.getIncident(incident!.id)!;
    assert.ok((closed.closedAt ?? 0) - (closed.mitigatedAt ?? 0) >= 600);
    assert.equal(closed.verifiedAt, closed.closedAt);
    assert.ok(events.some((e) => e.type === "incident.verified" && e.data.incident === incident!.id));
    assert.deepEqual(
      closed.timeline.map((e) => e.phase),
      ["detected", "mitigated", "verified"],
    );
  });

  test("one instance with another policy hash: policy-diverged naming it; a stopped instance is unchecked, never ok", async (t) => {
    const basePort = await freePortRange(3);
    for (const slot of [0, 1, 2]) {
      await startDemoApp(t, {
        args: ["--port", String(basePort + slot)],
        env: slot === 2 ? { POLICY_HASH: "stale-policy" } : {},
      });
    }
    const store = StateStore.open(tempStateDir(t));
    t.after(() => store.close());
    const events: { type: string; why: Reason; data: Record<string, unknown> }[] = [];
    let instances = [ready("api-0", 0), ready("api-1", 1), ready("api-2", 2)];
    const monitor = new InvariantMonitor({
      fleet: fleetOf(basePort, 3),
      store,
      instances: () => instances,
      note: (type, why, data) => events.push({ type, why, data }),
      pollMs: 50,
    });
    t.after(() => monitor.stop());
    monitor.start();
    const event = await waitFor(() => events.find((e) => e.type === "invariant.broken"), {
      what: "policy divergence",
    });
    assert.equal(event.why.code, "policy-diverged");
    assert.deepEqual(event.data.instances, ["api-2"]);
    assert.match(event.why.message, /api-2 reports policy hash stale-policy/);
    const [incident] = store.listIncidents({ status: "open" });
    assert.equal(incident?.reason, "policy-diverged");

    // An instance that is listed ready but does not answer (slot 3 has no process): unchecked.
    instances = [ready("api-0", 0), ready("api-1", 1), ready("api-3", 3)];
    await waitFor(
      () => {
        const v = monitor.forService("api");
        return !v.checked && v.lastCheckedAt !== null;
      },
      { what: "an unchecked verdict" },
    );
    // Several rounds later it is still unchecked, not ok, and the incident is not called restored.
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(monitor.forService("api").ok, false);
    assert.equal(monitor.forService("api").checked, false);
    assert.ok(!events.some((e) => e.type === "invariant.restored"));
    assert.equal(store.getIncident(incident!.id)?.mitigatedAt, null);
  });

  test("a service without invariants is ok; a later controller closes incidents of invariants no longer declared", (t) => {
    const store = StateStore.open(tempStateDir(t));
    t.after(() => store.close());
    const stale = store.openIncident({
      service: "api",
      instance: "api/protected-path:GET /gone",
      kind: INVARIANT_INCIDENT_KIND,
      reason: "auth-not-enforced",
      detectedAt: 1,
    });
    const events: string[] = [];
    const monitor = new InvariantMonitor({
      fleet: fleetOf(20_000, 1),
      store,
      instances: () => [],
      note: (type) => events.push(type),
    });
    t.after(() => monitor.stop());
    monitor.start();
    assert.equal(store.getIncident(stale.id)?.status, "closed");
    assert.deepEqual(events, ["incident.closed"]);
    const plain = parseFleet(
      "version: 1\nservices:\n  web:\n    replicas: 1\n    basePort: 20100\n    release: v1\n    releases:\n      v1: { command: node }\n",
      "/tmp/f.yaml",
    );
    assert.ok(plain.ok);
    const none = new InvariantMonitor({ fleet: plain.fleet, store, instances: () => [], note: () => {} });
    assert.deepEqual(none.forService("web"), { ok: true, checked: true, broken: [], lastCheckedAt: null });
  });
});
