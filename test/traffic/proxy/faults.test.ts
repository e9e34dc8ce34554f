import assert from "node:assert/strict";
import { test } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { FaultRegistry } from "../../../src/traffic/faults.ts";
import { binomialCheck } from "../../helpers/seededRandom.ts";
import { endpointOf, send, sendMany, startProxy, startUpstream, startUpstreams, traffic } from "./kit.ts";

const NO_EJECTION = { outlier: { consecutiveFailures: 1_000_000 } };

test("the registry adds, lists, matches by service/instance/zone, removes and clears", () => {
  const registry = new FaultRegistry({ now: () => 1_700_000_000_000 });
  const endpoint = endpointOf({ name: "api-0", port: 1 }, "zone-a");
  assert.deepEqual(registry.match(endpoint), [], "off by default");

  const everywhere = registry.add({ fault: { kind: "latency", ms: 10 } });
  const byInstance = registry.add({ instance: "api-0", fault: { kind: "reset" } });
  registry.add({ zone: "zone-b", fault: { kind: "blackhole" } });
  registry.add({ service: "other", fault: { kind: "error", status: 503 } });
  assert.equal(everywhere.createdAt, 1_700_000_000_000);
  assert.notEqual(everywhere.id, byInstance.id);
  assert.equal(byInstance.fault.kind === "reset" ? byInstance.fault.rate : null, 1, "rate defaults to 1");
  assert.deepEqual(
    registry.match(endpoint).map((r) => r.id),
    [everywhere.id, byInstance.id],
  );
  assert.equal(registry.list().length, 4);

  assert.equal(registry.remove(byInstance.id), true);
  assert.equal(registry.remove(byInstance.id), false);
  assert.deepEqual(
    registry.match(endpoint).map((r) => r.id),
    [everywhere.id],
  );
  registry.clear();
  assert.deepEqual(registry.list(), []);
});

test("the registry refuses faults that make no sense", () => {
  const registry = new FaultRegistry();
  const invalid = [
    { kind: "latency", ms: -1 },
    { kind: "latency", ms: 1.5 },
    { kind: "error", status: 200 },
    { kind: "error", status: 503, rate: 0 },
    { kind: "reset", rate: 1.5 },
    { kind: "teleport" },
  ];
  for (const fault of invalid) {
    assert.throws(
      () => registry.add({ fault: fault as never }),
      (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      JSON.stringify(fault),
    );
  }
  assert.deepEqual(registry.list(), []);
});

test("latency: the attempt is delayed before it is forwarded", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, faults } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  faults.add({ instance: "api-0", fault: { kind: "latency", ms: 300 } });
  const started = performance.now();
  const reply = await send(client);
  assert.equal(reply.status, 200);
  assert.ok(performance.now() - started >= 290);
  assert.equal(upstream.hits, 1, "then it does reach the upstream");
});

test("error: the attempt yields the status without contacting the upstream, and is retried like a real one", async (t) => {
  const [a, b] = await startUpstreams(t, "api", 2);
  const { client, faults } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(a!), endpointOf(b!)],
  });
  const rule = faults.add({ instance: "api-0", fault: { kind: "error", status: 503 } });
  const gets = await sendMany(client, 30, 3);
  assert.ok(gets.every((r) => r.status === 200 && r.headers["x-homeostat-instance"] === "api-1"));
  assert.equal(a!.hits, 0, "the faulty instance was never contacted");

  // A POST on 503 is not retried: the client sees the injected answer.
  faults.clear();
  faults.add({ fault: { kind: "error", status: 503 } });
  const post = await send(client, { method: "POST", body: "x" });
  assert.equal(post.status, 503);
  assert.match(String(post.headers["x-homeostat-fault"]), /^fault-/);
  assert.equal(JSON.parse(post.body).error, "injected fault");
  assert.notEqual(post.headers["x-homeostat-fault"], rule.id);
});

test("error faults feed outlier detection like real failures", async (t) => {
  const [a, b] = await startUpstreams(t, "api", 2);
  const running = await startProxy(t, {
    traffic: traffic({ outlier: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 } }),
    endpoints: [endpointOf(a!), endpointOf(b!)],
  });
  running.faults.add({ instance: "api-0", fault: { kind: "error", status: 500 } });
  await sendMany(running.client, 20, 2);
  const rows = running.proxy.state().endpoints as { instance: string; ejected: boolean }[];
  assert.deepEqual(
    rows.filter((r) => r.ejected).map((r) => r.instance),
    ["api-0"],
  );
});

test("reset: the attempt fails as a reset (502 for a POST, which is not retried)", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, faults } = await startProxy(t, {
    traffic: traffic(NO_EJECTION),
    endpoints: [endpointOf(upstream)],
  });
  faults.add({ fault: { kind: "reset" } });
  const reply = await send(client, { method: "POST", body: "x" });
  assert.equal(reply.status, 502);
  assert.deepEqual(JSON.parse(reply.body).attempts, [{ instance: "api-0", outcome: "reset" }]);
  assert.equal(upstream.hits, 0);
});

test("reset with a rate affects only that share of attempts", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, faults } = await startProxy(t, {
    traffic: traffic({ ...NO_EJECTION, retries: { maxAttempts: 1 } }),
    endpoints: [endpointOf(upstream)],
  });
  faults.add({ fault: { kind: "reset", rate: 0.5 } });
  const requests = 1_000;
  const replies = await sendMany(client, requests, 8);
  const failed = replies.filter((r) => r.status === 502).length;
  // One attempt per request, each reset with probability 0.5: Binomial(1,000, 0.5), 500 ± 47 at
  // 3σ, so a rate applied as 0.4 or 0.6 fails. The kit's seeded source makes it the same count
  // every run.
  const share = binomialCheck(failed, requests, 0.5, "reset at a rate of 0.5");
  assert.ok(share.ok, share.message);
  assert.equal(upstream.hits, requests - failed);
});

test("blackhole: the attempt hangs until the per-try timeout, then is retried elsewhere", async (t) => {
  const [a, b] = await startUpstreams(t, "api", 2);
  const perTryTimeoutMs = 250;
  const { client, faults } = await startProxy(t, {
    traffic: traffic({ ...NO_EJECTION, retries: { perTryTimeoutMs } }),
    endpoints: [endpointOf(a!, "zone-a"), endpointOf(b!, "zone-b")],
  });
  faults.add({ zone: "zone-a", fault: { kind: "blackhole" } });
  const replies = await sendMany(client, 10, 5);
  assert.ok(replies.every((r) => r.status === 200 && r.headers["x-homeostat-instance"] === "api-1"));
  assert.equal(a!.hits, 0);

  // With nowhere else to go, the client gets a 504.
  faults.add({ fault: { kind: "blackhole" } });
  const started = performance.now();
  const reply = await send(client);
  assert.equal(reply.status, 504);
  assert.ok(
    performance.now() - started >= perTryTimeoutMs * 3 - 30,
    "three attempts, each hung to its timeout",
  );
});
