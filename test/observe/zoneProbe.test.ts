import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import type { ProbeFn } from "../../src/observe/prober.ts";
import type { ProbeOutcome } from "../../src/observe/probeTarget.ts";
import { ZoneProber, type ZoneProbeTarget } from "../../src/observe/zoneProbe.ts";
import type { ProbeCheck } from "../../src/spec/model.ts";
import { FaultRegistry } from "../../src/traffic/faults.ts";
import { waitFor } from "../helpers/waitFor.ts";

const HTTP: ProbeCheck = { kind: "http", path: "/ready", expectStatus: [200, 399] };

function zoneTarget(port: number, overrides: Partial<ZoneProbeTarget> = {}): ZoneProbeTarget {
  return {
    endpoint: {
      instance: "api-0",
      service: "api",
      release: "v1",
      zone: "zone-a",
      host: "host-a",
      address: "127.0.0.1",
      port,
    },
    check: HTTP,
    intervalMs: 100,
    timeoutMs: 500,
    failureThreshold: 3,
    reuses: "readiness",
    ...overrides,
  };
}

/** A ProbeFn that records its calls and answers what the test says, when the test says. */
function scriptedProbe(): {
  probe: ProbeFn;
  calls: ProbeCheck[];
  answer: (outcome: ProbeOutcome) => void;
} {
  const calls: ProbeCheck[] = [];
  const pending: Array<(outcome: ProbeOutcome) => void> = [];
  return {
    probe: (_instance, check) => {
      calls.push(check);
      return new Promise((resolve) => pending.push(resolve));
    },
    calls,
    answer: (outcome) => {
      const next = pending.shift();
      assert.ok(next, "a probe is waiting for its answer");
      next(outcome);
    },
  };
}

/** An HTTP server on 127.0.0.1 that answers every request and counts them; closed when `t` ends. */
async function countingServer(t: { after(fn: () => Promise<void>): void }): Promise<{
  port: number;
  requests: () => number;
}> {
  let requests = 0;
  const server = createServer((_req, res) => {
    requests++;
    res.end("ok");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, requests: () => requests };
}

describe("ZoneProber reusing the instance's own probe", () => {
  test("with no fault on the endpoint it sends nothing over the network and judges by the readiness probe's results", async (t) => {
    const server = await countingServer(t);
    const port = server.port;

    let now = 0;
    const prober = new ZoneProber({ faults: new FaultRegistry(), now: () => now });
    t.after(() => prober.stop());
    for (let i = 0; i < 5; i++) {
      prober.run([zoneTarget(port)]);
      now += 100;
    }
    assert.equal(
      server.requests(),
      0,
      "no zone probe request while the readiness probe covers the same path",
    );

    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    assert.equal(prober.failing("api-0", 3), null, "below the threshold");
    prober.noteInstanceProbe("api-0", "liveness", false, "status 500");
    assert.equal(prober.failing("api-0", 3), null, "the liveness probe does not stand for this zone probe");
    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    assert.equal(prober.failing("api-0", 3), "zone probe failed 3× (timeout after 500ms)");
    prober.noteInstanceProbe("api-0", "readiness", true, undefined);
    assert.equal(prober.failing("api-0", 3), null, "a pass resets the count");
  });

  test("the same prober probes on its own over the network while a fault rule applies, and then ignores the instance's results", async (t) => {
    const server = await countingServer(t);
    const port = server.port;

    const faults = new FaultRegistry();
    const prober = new ZoneProber({ faults, now: Date.now, random: () => 0.99 });
    t.after(() => prober.stop());
    // A rule that matches the endpoint but (rate 0.5, random 0.99) never fires: the probe still
    // goes to the network on its own, as an injected fault needs it to.
    const rule = faults.add({ zone: "zone-a", fault: { kind: "reset", rate: 0.5 } });
    prober.run([zoneTarget(port)]);
    await waitFor(() => server.requests() === 1, { what: "the zone probe's own request" });
    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    prober.noteInstanceProbe("api-0", "readiness", false, "timeout after 500ms");
    assert.equal(
      prober.failing("api-0", 3),
      null,
      "instance results do not count while it probes on its own",
    );

    faults.remove(rule.id);
    prober.run([zoneTarget(port)]);
    prober.noteInstanceProbe("api-0", "readiness", false, "connect ECONNREFUSED");
    prober.noteInstanceProbe("api-0", "readiness", false, "connect ECONNREFUSED");
    prober.noteInstanceProbe("api-0", "readiness", false, "connect ECONNREFUSED");
    assert.equal(prober.failing("api-0", 3), "zone probe failed 3× (connect ECONNREFUSED)");
    assert.equal(server.requests(), 1, "no request of its own once the fault is gone");
  });

  test("an injected fault fails it by itself, as before", async (t) => {
    const scripted = scriptedProbe();
    const faults = new FaultRegistry();
    let now = 0;
    const prober = new ZoneProber({ faults, now: () => now, probe: scripted.probe });
    t.after(() => prober.stop());
    faults.add({ instance: "api-0", fault: { kind: "reset" } });
    for (let i = 0; i < 3; i++) {
      prober.run([zoneTarget(1)]);
      now += 100;
      await waitFor(() => prober.failing("api-0", i + 1) !== null, { what: `reset ${i + 1}` });
    }
    assert.match(prober.failing("api-0", 3) ?? "", /zone probe failed 3× \(connection reset \(fault-\d+\)\)/);
    assert.equal(scripted.calls.length, 0, "a reset fails before any connection");
  });

  test("a network probe still running when the fault is cleared does not count", async (t) => {
    const scripted = scriptedProbe();
    const faults = new FaultRegistry();
    let now = 0;
    const prober = new ZoneProber({ faults, now: () => now, probe: scripted.probe });
    t.after(() => prober.stop());
    const rule = faults.add({ instance: "api-0", fault: { kind: "latency", ms: 1 } });
    prober.run([zoneTarget(1, { failureThreshold: 1 })]);
    await waitFor(() => scripted.calls.length === 1, { what: "the probe after the injected latency" });
    faults.remove(rule.id);
    now += 100;
    prober.run([zoneTarget(1, { failureThreshold: 1 })]);
    scripted.answer({ ok: false, durationMs: 1, detail: "timeout after 499ms" });
    // Let the probe's continuation run before looking.
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(prober.failing("api-0", 1), null);
  });

  test("an exec readiness check (no network path) is always probed over the network, as a TCP connect", async (t) => {
    const scripted = scriptedProbe();
    let now = 0;
    const prober = new ZoneProber({ faults: new FaultRegistry(), now: () => now, probe: scripted.probe });
    t.after(() => prober.stop());
    const target = zoneTarget(1, {
      check: { kind: "exec", command: "true", args: [] },
      reuses: null,
    });
    prober.run([target]);
    assert.deepEqual(scripted.calls, [{ kind: "tcp" }]);
    prober.noteInstanceProbe("api-0", "readiness", false, "exit 1");
    scripted.answer({ ok: true, durationMs: 1 });
    await new Promise<void>((resolve) => setImmediate(resolve));
    assert.equal(prober.failing("api-0", 1), null, "the exec probe's own result is not the zone's");
    now += 100;
    prober.run([target]);
    assert.equal(scripted.calls.length, 2);
    scripted.answer({ ok: false, durationMs: 1, detail: "connect ECONNREFUSED" });
    await waitFor(() => prober.failing("api-0", 1) !== null, { what: "the TCP connect's failure" });
  });
});
