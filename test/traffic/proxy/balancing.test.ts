/**
 * The balancer seen through the proxy: ejection and return, the max-ejection cap, both panic
 * modes, zone priority spill and release weights, all counted from `x-homeostat-instance`.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
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

test("zone priorities: traffic spills by Envoy's overprovisioning at 100/70/50/0 % healthy", async (t) => {
  const local = await startUpstreams(t, "local", 10);
  const remote = await startUpstreams(t, "remote", 2);
  const running = await startProxy(t, {
    traffic: traffic({
      priorities: [["zone-a"], ["zone-b"]],
      overprovisioningFactor: 1.4,
      outlier: { consecutiveFailures: 1, baseEjectionMs: 600_000, maxEjectionPercent: 100 },
      panic: { thresholdPercent: 0 },
      retries: { budget: { minPerSecond: 1_000 } },
    }),
    endpoints: [...local.map((u) => endpointOf(u, "zone-a")), ...remote.map((u) => endpointOf(u, "zone-b"))],
  });

  const requests = 1_000;
  const localShare = async (): Promise<number> => {
    const replies = await sendMany(running.client, requests, 16);
    assert.ok(replies.every((r) => r.status === 200));
    return (
      replies.filter((r) => String(r.headers["x-homeostat-instance"]).startsWith("local")).length / requests
    );
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

  // Priority 0 keeps min(1, healthy × 1.4) of the load.
  assert.ok((await localShare()) === 1, "100 % healthy: all local");
  await ejectLocal(3);
  const at70 = await localShare();
  assert.ok(Math.abs(at70 - 0.98) <= 0.03, `70 % healthy: ~98 % local, got ${at70}`);
  await ejectLocal(5);
  const at50 = await localShare();
  assert.ok(Math.abs(at50 - 0.7) <= 0.06, `50 % healthy: ~70 % local, got ${at50}`);
  await ejectLocal(10);
  assert.equal(await localShare(), 0, "0 % healthy: all remote");
});

test("release weights 90/10 split the traffic within tolerance, and change atomically", async (t) => {
  const v1 = await startUpstreams(t, "v1", 2);
  const v2 = await startUpstreams(t, "v2", 2);
  const running = await startProxy(t, {
    endpoints: [
      ...v1.map((u) => endpointOf(u, "zone-a", "v1")),
      ...v2.map((u) => endpointOf(u, "zone-a", "v2")),
    ],
  });
  const v2Share = async (requests: number): Promise<number> => {
    const replies = await sendMany(running.client, requests, 16);
    return (
      replies.filter((r) => String(r.headers["x-homeostat-instance"]).startsWith("v2")).length / requests
    );
  };

  running.proxy.setWeights({ v1: 90, v2: 10 });
  const share = await v2Share(2_000);
  assert.ok(Math.abs(share - 0.1) <= 0.025, `v2 share ${share}, expected 0.10 ± 0.025`);
  assert.deepEqual(running.proxy.state().weights, { v1: 90, v2: 10 });

  running.proxy.setWeights({ v1: 0, v2: 1 });
  assert.equal(await v2Share(200), 1, "all at once: no request to v1 after the change");
  assert.throws(() => running.proxy.setWeights({ v1: -1 }), /weight/i);
});
