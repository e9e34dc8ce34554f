/**
 * Stalled instances through the real proxy: an instance with a request it does not answer (a
 * POST, which is never hedged, keeps it waiting) while its peers answer a steady flow of GETs.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { TrafficSpec } from "../../../src/spec/model.ts";
import { waitFor } from "../../helpers/waitFor.ts";
import { parseSamples, sampleValue } from "../stats/promText.ts";
import {
  type Cleanup,
  endpointOf,
  gate,
  type RunningProxy,
  send,
  startProxy,
  startUpstream,
  traffic,
  type Upstream,
} from "./kit.ts";

const STALL_AFTER_MS = 100;

function stallTraffic(maxEjectionPercent = 50): TrafficSpec {
  return traffic({
    outlier: { consecutiveFailures: 1_000_000, maxEjectionPercent },
    // A budget that never refuses: these tests are about stalls, not about the budget (hedging.test.ts).
    retries: { perTryTimeoutMs: 5_000, budget: { ratio: 1, minPerSecond: 1_000 } },
    hedging: { delayMs: 20 },
    stallDetection: { enabled: true, multiplier: 1, minTimeMs: STALL_AFTER_MS },
    drainTimeoutMs: 200,
  });
}

/** An upstream that holds every request until `release` is called (then answers "late"). */
async function startHeld(t: Cleanup, name: string): Promise<{ upstream: Upstream; release: () => void }> {
  const held = gate();
  t.after(held.open);
  const upstream = await startUpstream(t, name, async (req, res) => {
    req.resume();
    await held.wait;
    res.end("late");
  });
  return { upstream, release: held.open };
}

/**
 * A POST parked at `upstream`, sent while the members are `parked` (each already holding one) and
 * `upstream`: the less loaded of two, with at most one parked, is `upstream`. It answers when the
 * upstream does. Members are kept, so that their pools (and what they hold) are kept.
 */
async function parkPost(
  running: RunningProxy,
  upstream: Upstream,
  parked: Upstream[] = [],
): Promise<{ answered: Promise<unknown> }> {
  running.proxy.setEndpoints([...parked, upstream].map((u) => endpointOf(u)));
  const before = upstream.hits;
  const answered = send(running.client, { method: "POST", body: "order" }).catch(() => undefined);
  await waitFor(() => upstream.hits > before, { what: `the POST at ${upstream.name}` });
  // Wrapped: an async function returning the promise itself would wait for it.
  return { answered };
}

/** GETs, two at a time, until stopped; every reply is kept. */
function steadyGets(running: RunningProxy) {
  let stopped = false;
  const statuses: number[] = [];
  const loop = async (): Promise<void> => {
    while (!stopped) {
      try {
        statuses.push((await send(running.client)).status);
      } catch {
        statuses.push(0);
      }
    }
  };
  const loops = [loop(), loop()];
  return {
    statuses,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

function eventsOf(running: RunningProxy, type: string, reason: string) {
  return running.events.filter((e) => e.type === type && e.reason === reason);
}

test("a stalled instance gets no new requests until it answers again, then it is back", async (t) => {
  const { upstream: hung, release } = await startHeld(t, "api-hung");
  const good = await Promise.all([startUpstream(t, "api-0"), startUpstream(t, "api-1")]);
  const running = await startProxy(t, { traffic: stallTraffic() });
  const post = await parkPost(running, hung);
  running.proxy.setEndpoints([hung, ...good].map((u) => endpointOf(u)));

  const load = steadyGets(running);
  t.after(load.stop);
  await waitFor(() => eventsOf(running, "traffic.ejected", "stalled").length > 0, { what: "a stall" });
  const [stalled] = eventsOf(running, "traffic.ejected", "stalled");
  assert.equal((stalled!.data as { instance: string }).instance, "api-hung");
  const row = (
    running.proxy.state().endpoints as { instance: string; stalled: boolean; ejected: boolean }[]
  ).find((e) => e.instance === "api-hung");
  assert.equal(row?.stalled, true);
  assert.equal(row?.ejected, false, "not an outlier ejection");

  // No new request reaches it while it is stalled.
  const hitsWhenStalled = hung.hits;
  const answeredBefore = load.statuses.length;
  await waitFor(() => load.statuses.length >= answeredBefore + 100, { what: "100 more answers" });
  assert.equal(hung.hits, hitsWhenStalled);

  // It answers its parked POST: it is back, and gets requests again.
  release();
  await post.answered;
  await waitFor(() => eventsOf(running, "traffic.returned", "answered").length > 0, { what: "its return" });
  await waitFor(() => hung.hits > hitsWhenStalled, { what: "a new request at the returned instance" });
  await load.stop();
  assert.ok(
    load.statuses.every((status) => status === 200),
    "every GET was answered (hedged while the instance was silent)",
  );
  const samples = parseSamples(await running.stats.metricsText());
  const labels = { service: "api", instance: "api-hung", reason: "stalled" };
  assert.equal(sampleValue(samples, "homeostat_proxy_ejections_total", labels), 1);
  assert.equal(sampleValue(samples, "homeostat_proxy_ejected", labels), 0);
});

test("stalls respect the max-ejection cap: of two silent instances among three, one is avoided", async (t) => {
  const hung = await Promise.all([startHeld(t, "api-hung-0"), startHeld(t, "api-hung-1")]);
  const good = await startUpstream(t, "api-good");
  // 50 % of 3 members: one may be out.
  const running = await startProxy(t, { traffic: stallTraffic(50) });
  await parkPost(running, hung[0]!.upstream);
  await parkPost(running, hung[1]!.upstream, [hung[0]!.upstream]);
  assert.equal(hung[0]!.upstream.hits, 1, "one POST each");
  running.proxy.setEndpoints([...hung.map((h) => endpointOf(h.upstream)), endpointOf(good)]);

  const load = steadyGets(running);
  t.after(load.stop);
  await waitFor(() => (running.proxy.state().stallsSuppressed as number) > 0, {
    what: "a stall the cap prevented",
  });
  const rows = running.proxy.state().endpoints as { instance: string; stalled: boolean }[];
  assert.deepEqual(
    rows.filter((r) => r.stalled).length,
    1,
    `stalled: ${rows.filter((r) => r.stalled).map((r) => r.instance)}`,
  );
  assert.equal(eventsOf(running, "traffic.ejected", "stalled").length, 1);
  await load.stop();
  assert.ok(load.statuses.every((status) => status === 200));
});
