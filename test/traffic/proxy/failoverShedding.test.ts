import assert from "node:assert/strict";
import { test } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { DataPlane } from "../../../src/traffic/dataPlane.ts";
import { makeFleet } from "../../helpers/fleetFixture.ts";
import { binomialCheck } from "../../helpers/seededRandom.ts";
import { parseSamples, sampleValue } from "../stats/promText.ts";
import { endpointOf, type Reply, send, startProxy, startUpstream } from "./kit.ts";

const as = (criticality: string) => ({ headers: { "x-homeostat-criticality": criticality } });

/** `count` requests of `criticality`, eight at a time. */
async function sendAs(
  client: Parameters<typeof send>[0],
  criticality: string,
  count: number,
): Promise<Reply[]> {
  const replies: Reply[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      replies.push(await send(client, as(criticality)));
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  return replies;
}

test("failover shedding refuses sheddable requests before admission; default and critical pass", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, proxy, stats } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  proxy.setShedding({ sheddable: 1, default: 0 });
  assert.deepEqual(proxy.state().shedding, { sheddable: 1, default: 0 });

  const shed = await send(client, as("sheddable"));
  assert.equal(shed.status, 503);
  assert.equal(shed.headers["x-homeostat-shed"], "failover-shed");
  assert.equal(shed.headers["retry-after"], "1");
  assert.equal(typeof shed.headers["x-request-id"], "string");
  assert.equal(shed.headers["x-homeostat-attempts"], undefined, "no attempt was made");
  assert.deepEqual(JSON.parse(shed.body), {
    error: "shed",
    reason: "failover-shed",
    criticality: "sheddable",
  });
  assert.equal(upstream.hits, 0, "a request shed by the gate never reaches an upstream");

  for (const criticality of ["default", "critical"]) {
    const reply = await send(client, as(criticality));
    assert.equal(reply.status, 200, `${criticality} passes the gate`);
  }
  assert.equal(upstream.hits, 2);

  // Counted as a shed request (result and reason), and as an arrival in the demand rates.
  const metrics = parseSamples(await stats.metricsText());
  assert.equal(
    sampleValue(metrics, "homeostat_proxy_shed_total", {
      service: "api",
      criticality: "sheddable",
      reason: "failover-shed",
    }),
    1,
  );
  assert.equal(
    sampleValue(metrics, "homeostat_proxy_requests_total", {
      service: "api",
      criticality: "sheddable",
      result: "shed",
    }),
    1,
  );
  const rates = stats.criticalityRates("api", 60_000);
  assert.deepEqual(
    [rates.critical, rates.default, rates.sheddable].map((perSecond) => Math.round(perSecond * 60)),
    [1, 1, 1],
  );
  // Admission never saw the shed request.
  const admission = proxy.state().admission as { admitted: Record<string, number> };
  assert.equal(admission.admitted.sheddable, 0);

  // Null removes the gate.
  proxy.setShedding(null);
  assert.equal(proxy.state().shedding, null);
  const after = await send(client, as("sheddable"));
  assert.equal(after.status, 200);
  assert.equal(upstream.hits, 3);
});

test("failover shedding at a share of 0.5 refuses about half, and never a critical request", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, proxy } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  proxy.setShedding({ sheddable: 0.5, default: 0.5 });

  const requests = 1_000;
  const replies = await sendAs(client, "default", requests);
  const shed = replies.filter((r) => r.status === 503);
  assert.ok(
    shed.every((r) => r.headers["x-homeostat-shed"] === "failover-shed"),
    "every refusal is the gate's",
  );
  assert.equal(replies.length - shed.length, upstream.hits, "the others reached the upstream once each");
  // Each default request is one Bernoulli(0.5) draw at the gate, so the shed count is
  // Binomial(1,000, 0.5): 500 ± 47 at 3σ, so a gate shedding 40 % or 60 % fails. The kit's seeded
  // source makes it the same count every run.
  const share = binomialCheck(shed.length, requests, 0.5, "shed at a share of 0.5");
  assert.ok(share.ok, share.message);

  const critical = await sendAs(client, "critical", 50);
  assert.ok(
    critical.every((r) => r.status === 200),
    "critical is never shed by the gate",
  );
});

test("failover shedding refuses shares that are not finite numbers in [0, 1]", async (t) => {
  const upstream = await startUpstream(t, "api-0");
  const { client, proxy } = await startProxy(t, { endpoints: [endpointOf(upstream)] });
  proxy.setShedding({ sheddable: 1, default: 0 });
  const bad: unknown[] = [
    { sheddable: 1.5, default: 0 },
    { sheddable: 0.5, default: -0.1 },
    { sheddable: Number.NaN, default: 0 },
    { sheddable: Number.POSITIVE_INFINITY, default: 0 },
    { sheddable: 0.5 },
    { sheddable: "0.5", default: 0 },
  ];
  for (const shares of bad) {
    assert.throws(
      () => proxy.setShedding(shares as { sheddable: number; default: number }),
      (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      JSON.stringify(shares),
    );
  }
  // A refused setting leaves the previous one in force.
  assert.deepEqual(proxy.state().shedding, { sheddable: 1, default: 0 });
  assert.equal((await send(client, as("sheddable"))).status, 503);
});

test("DataPlane.setShedding reaches the service's proxy, and refuses a service without one", async (t) => {
  const fleet = makeFleet({ services: [{ name: "api", port: 0 }, { name: "worker" }] });
  const plane = new DataPlane(fleet);
  t.after(() => plane.close());
  await plane.listen();

  plane.setShedding("api", { sheddable: 0.25, default: 0 });
  const api = plane.state().api as { shedding: unknown };
  assert.deepEqual(api.shedding, { sheddable: 0.25, default: 0 });
  assert.throws(() => plane.setShedding("worker", { sheddable: 1, default: 1 }), /no traffic listener/);
  assert.throws(
    () => plane.setShedding("api", { sheddable: 2, default: 0 }),
    (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
  );
  plane.setShedding("api", null);
  assert.equal((plane.state().api as { shedding: unknown }).shedding, null);
});
