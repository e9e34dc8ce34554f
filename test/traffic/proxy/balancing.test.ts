/**
 * The balancer seen through the proxy: ejection and return, the max-ejection cap, both panic
 * modes, zone priority spill and release weights, all counted from `x-homeostat-instance`.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { binomialCheck, reseedableRandom } from "../../helpers/seededRandom.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import {
  answerOk,
  answerStatus,
  countByInstance,
  endpointOf,
  type RunningProxy,
  send,
  sendMany,
  startProxy,
  startUpstreams,
  traffic,
} from "./kit.ts";

interface EndpointView {
  instance: string;
  ejected: boolean;
  /** Epoch ms. */
  ejectedUntil: number | null;
}

function endpointsOf(running: RunningProxy): EndpointView[] {
  return running.proxy.state().endpoints as EndpointView[];
}

function ejectedOf(running: RunningProxy): string[] {
  return endpointsOf(running)
    .filter((e) => e.ejected)
    .map((e) => e.instance)
    .sort();
}

/** Keep sending until `condition` holds (failures are needed to eject). */
async function driveUntil(running: RunningProxy, condition: () => boolean, what: string): Promise<void> {
  await waitFor(
    async () => {
      await sendMany(running.client, 10, 5);
      return condition();
    },
    { timeoutMs: 20_000, what },
  );
}

test("an instance answering 503 is ejected, avoided, and used again after its ejection", async (t) => {
  const [bad, ...good] = await startUpstreams(t, "api", 3);
  bad!.handler = answerStatus(503);
  const baseEjectionMs = 3_000;
  const running = await startProxy(t, {
    traffic: traffic({
      outlier: { consecutiveFailures: 3, baseEjectionMs, maxEjectionPercent: 50 },
      panic: { thresholdPercent: 0 },
    }),
    endpoints: [bad!, ...good].map((u) => endpointOf(u)),
  });

  await driveUntil(running, () => ejectedOf(running).includes("api-0"), "api-0 ejected");
  // When the ejection ends, as the balancer set it (the poll above notices it some time after it
  // began, more on a busy machine).
  const ejectedUntil = endpointsOf(running).find((e) => e.instance === "api-0")!.ejectedUntil!;
  assert.ok(ejectedUntil > Date.now(), "ejected for a while yet");
  await waitFor(
    () =>
      running.events.some(
        (e) => e.type === "traffic.ejected" && (e.data as { instance: string }).instance === "api-0",
      ),
    { what: "ejection event" },
  );

  const hitsAtEjection = bad!.hits;
  const during = await sendMany(running.client, 60, 6);
  if (Date.now() < ejectedUntil) {
    assert.equal(bad!.hits, hitsAtEjection, "no request reaches an ejected instance");
  }
  assert.ok(during.every((r) => r.status === 200));

  // Healthy again: after the ejection ends it takes traffic again.
  bad!.handler = answerOk;
  await waitFor(
    async () => {
      const replies = await sendMany(running.client, 20, 4);
      return replies.some((r) => r.headers["x-homeostat-instance"] === "api-0");
    },
    { timeoutMs: 20_000, what: "api-0 back in rotation" },
  );
  assert.ok(Date.now() >= ejectedUntil - 50, "not before the ejection time");
  await waitFor(() => running.events.some((e) => e.type === "traffic.returned"), { what: "return event" });
});

test("the max-ejection cap keeps instances in service even when all of them fail", async (t) => {
  const upstreams = await startUpstreams(t, "api", 4, answerStatus(503));
  const running = await startProxy(t, {
    traffic: traffic({
      outlier: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 50 },
      panic: { thresholdPercent: 0 },
    }),
    endpoints: upstreams.map((u) => endpointOf(u)),
  });
  await driveUntil(running, () => ejectedOf(running).length === 2, "two ejected");
  await sendMany(running.client, 40, 4);
  assert.equal(ejectedOf(running).length, 2, "floor(50 % × 4) = 2, never more");
  assert.ok((running.proxy.state().ejectionsSuppressed as number) > 0, "the cap's refusals are visible");
});

/** Four instances, three of them failing until ejected (the cap allows all). */
async function threeOfFourEjected(
  t: Parameters<typeof startUpstreams>[0],
  mode: "send-to-all" | "fail-closed",
) {
  const upstreams = await startUpstreams(t, "api", 4);
  for (const u of upstreams.slice(1)) u.handler = answerStatus(503);
  const running = await startProxy(t, {
    traffic: traffic({
      outlier: { consecutiveFailures: 2, baseEjectionMs: 60_000, maxEjectionPercent: 100 },
      panic: { thresholdPercent: 50, mode },
    }),
    endpoints: upstreams.map((u) => endpointOf(u)),
  });
  await driveUntil(running, () => ejectedOf(running).length === 3, "three ejected");
  for (const u of upstreams) u.handler = answerOk;
  return { upstreams, running };
}

test("panic send-to-all: below the threshold, ejected instances get traffic again", async (t) => {
  const { upstreams, running } = await threeOfFourEjected(t, "send-to-all");
  assert.equal(running.proxy.state().panic, true);
  await waitFor(() => running.events.some((e) => e.type === "traffic.panic"), { what: "panic event" });
  const hitsBefore = upstreams.map((u) => u.hits);
  const replies = await sendMany(running.client, 200, 8);
  const counts = countByInstance(replies);
  for (const u of upstreams.slice(1)) {
    assert.ok(
      (counts.get(u.name) ?? 0) > 20,
      `${u.name} (ejected) gets traffic in panic: ${counts.get(u.name)}`,
    );
  }
  assert.ok(upstreams.every((u, i) => u.hits > hitsBefore[i]!));
});

test("panic fail-closed: ejected instances stay out; 503 all-ejected when none is left", async (t) => {
  const { upstreams, running } = await threeOfFourEjected(t, "fail-closed");
  assert.equal(running.proxy.state().panic, true);
  const replies = await sendMany(running.client, 100, 8);
  assert.deepEqual([...countByInstance(replies).keys()], ["api-0"], "only the healthy one");

  // The last healthy one fails too: now nothing is usable, and the proxy says so.
  upstreams[0]!.handler = answerStatus(503);
  await driveUntil(running, () => ejectedOf(running).length === 4, "all ejected");
  const reply = await send(running.client);
  assert.equal(reply.status, 503);
  assert.equal(reply.headers["x-homeostat-shed"], "no-upstream");
  assert.deepEqual(JSON.parse(reply.body), { error: "no-upstream", reason: "all-ejected" });
});

/**
 * A seeded source restarted before each measurement. Driving ejections takes a varying number of
 * requests (polls against the wall clock), so without the restart the measured draws would start
 * anywhere in the sequence; with it, and with hedging off (a hedge is one more pick, and whether
 * one happens depends on timing), each healthy request takes the same draws and a measurement
 * gives the same count on every run.
 */
const MEASURE_SEED = 2;

test("zone priorities: traffic spills by Envoy's overprovisioning at 100/70/50/0 % healthy", async (t) => {
  const local = await startUpstreams(t, "local", 10);
  const remote = await startUpstreams(t, "remote", 2);
  const source = reseedableRandom(1);
  const running = await startProxy(t, {
    traffic: traffic({
      priorities: [["zone-a"], ["zone-b"]],
      overprovisioningFactor: 1.4,
      outlier: { consecutiveFailures: 1, baseEjectionMs: 600_000, maxEjectionPercent: 100 },
      panic: { thresholdPercent: 0 },
      retries: { budget: { minPerSecond: 1_000 } },
      hedging: { enabled: false },
    }),
    endpoints: [...local.map((u) => endpointOf(u, "zone-a")), ...remote.map((u) => endpointOf(u, "zone-b"))],
    random: source.random,
  });

  const requests = 1_000;
  /** Requests of 1,000 answered by a local instance. */
  const localCount = async (): Promise<number> => {
    source.reseed(MEASURE_SEED);
    const replies = await sendMany(running.client, requests, 16);
    assert.ok(replies.every((r) => r.status === 200));
    return replies.filter((r) => String(r.headers["x-homeostat-instance"]).startsWith("local")).length;
  };
  /** Priority 0 gets min(1, healthy × 1.4) of the picks: Binomial(1,000, that), checked at ±3σ. */
  const assertLocal = (count: number, healthy: number): void => {
    const check = binomialCheck(
      count,
      requests,
      Math.min(1, healthy * 1.4),
      `${healthy * 100} % healthy, local`,
    );
    assert.ok(check.ok, check.message);
  };
  /** Eject local instances until `count` are out (each fails once, then is healthy again). */
  const ejectLocal = async (count: number): Promise<void> => {
    for (const u of local.slice(0, count)) u.handler = answerStatus(503);
    await driveUntil(
      running,
      () => ejectedOf(running).filter((i) => i.startsWith("local")).length === count,
      `${count} local ejected`,
    );
    for (const u of local) u.handler = answerOk;
  };

  // 100 % and 0 % healthy are exact (p = 1 and 0); 70 % gives 980 ± 13 and 50 % 700 ± 43.
  assert.equal(await localCount(), requests, "100 % healthy: all local");
  await ejectLocal(3);
  assertLocal(await localCount(), 0.7);
  await ejectLocal(5);
  assertLocal(await localCount(), 0.5);
  await ejectLocal(10);
  assert.equal(await localCount(), 0, "0 % healthy: all remote");
});

test("release weights 90/10 split the traffic within tolerance, and change atomically", async (t) => {
  const v1 = await startUpstreams(t, "v1", 2);
  const v2 = await startUpstreams(t, "v2", 2);
  const source = reseedableRandom(1);
  const running = await startProxy(t, {
    traffic: traffic({ hedging: { enabled: false } }),
    endpoints: [
      ...v1.map((u) => endpointOf(u, "zone-a", "v1")),
      ...v2.map((u) => endpointOf(u, "zone-a", "v2")),
    ],
    random: source.random,
  });
  /** Requests answered by v2. */
  const v2Count = async (requests: number): Promise<number> => {
    source.reseed(MEASURE_SEED);
    const replies = await sendMany(running.client, requests, 16);
    return replies.filter((r) => String(r.headers["x-homeostat-instance"]).startsWith("v2")).length;
  };

  running.proxy.setWeights({ v1: 90, v2: 10 });
  // Each request picks v2 with probability 0.1: Binomial(4,000, 0.1), 400 ± 57 at 3σ (± 1.4 %).
  const check = binomialCheck(await v2Count(4_000), 4_000, 0.1, "v2 at weight 10 of 100");
  assert.ok(check.ok, check.message);
  assert.deepEqual(running.proxy.state().weights, { v1: 90, v2: 10 });

  running.proxy.setWeights({ v1: 0, v2: 1 });
  assert.equal(await v2Count(200), 200, "all at once: no request to v1 after the change");
  assert.throws(() => running.proxy.setWeights({ v1: -1 }), /weight/i);
});
