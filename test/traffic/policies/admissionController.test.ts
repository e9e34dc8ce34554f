import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import type { Criticality, Permit, Rejection } from "../../../src/traffic/contracts.ts";
import {
  AdmissionController,
  type AdmissionControllerOptions,
  serviceLimit,
} from "../../../src/traffic/policies/admissionController.ts";
import { fakeClock, flush, type Tracked, track } from "./kit.ts";

const OK = { latencyMs: 10, dropped: false };

/**
 * A controller on a fake clock (limit 2, queue 3, 60 s queue timeout by default). When the test
 * ends, every request still queued is timed out, which also stops the controller's timer.
 */
function controller(t: TestContext, options: Partial<AdmissionControllerOptions> = {}) {
  const clock = fakeClock(0);
  const admission = new AdmissionController({
    limit: () => 2,
    queueSize: 3,
    queueTimeoutMs: 60_000,
    now: clock.now,
    ...options,
  });
  t.after(() => {
    clock.advance(1e12);
    admission.limitChanged();
    assert.equal(admission.queued, 0);
  });
  return { admission, clock };
}

async function admitted(
  admission: AdmissionController,
  criticality: Criticality = "default",
): Promise<Permit> {
  const result = await admission.acquire(criticality);
  assert.equal(result.admitted, true, `expected ${criticality} to be admitted`);
  return result as Permit;
}

function permitOf(tracked: Tracked<Permit | Rejection>): Permit {
  assert.equal(tracked.settled, true, "not settled");
  const value = tracked.value;
  assert.equal(value?.admitted, true, `rejected: ${value?.admitted === false ? value.reason : "?"}`);
  return tracked.value as Permit;
}

function rejectionOf(tracked: Tracked<Permit | Rejection>): Rejection {
  assert.equal(tracked.settled, true, "not settled");
  assert.equal(tracked.value?.admitted, false, "admitted, expected a rejection");
  return tracked.value as Rejection;
}

describe("AdmissionController", () => {
  it("admits at once under the limit and counts in-flight requests", async (t) => {
    const { admission } = controller(t);
    await admitted(admission, "sheddable");
    await admitted(admission, "default");
    assert.equal(admission.inFlight, 2);
    assert.equal(admission.stats().admitted.sheddable, 1);
  });

  it("at the limit rejects sheddable at once with over-limit, and queues default and critical", async (t) => {
    const { admission } = controller(t);
    await admitted(admission);
    await admitted(admission);
    const shed = await admission.acquire("sheddable");
    assert.deepEqual(shed, { admitted: false, reason: "over-limit", retryAfterSeconds: 1 });
    const waiting = [track(admission.acquire("default")), track(admission.acquire("critical"))];
    await flush();
    assert.ok(waiting.every((w) => !w.settled));
    assert.deepEqual(admission.stats().queued, { critical: 1, default: 1 });
  });

  it("sheds every sheddable request before it rejects any default one", async (t) => {
    const { admission } = controller(t, { queueSize: 3 });
    await admitted(admission);
    await admitted(admission);
    const arrivals: Array<[Criticality, Tracked<Permit | Rejection>]> = [];
    for (const criticality of [
      "sheddable",
      "default",
      "sheddable",
      "default",
      "sheddable",
      "default",
    ] as const) {
      arrivals.push([criticality, track(admission.acquire(criticality))]);
    }
    await flush();
    for (const [criticality, tracked] of arrivals) {
      if (criticality === "sheddable") assert.equal(rejectionOf(tracked).reason, "over-limit");
      else assert.equal(tracked.settled, false, "defaults wait while the queue has room");
    }
    const stats = admission.stats();
    assert.equal(stats.rejected["over-limit"].sheddable, 3);
    assert.equal(stats.rejected["queue-full"].default, 0);
  });

  it("rejects a new default with queue-full when the queue is full", async (t) => {
    const { admission } = controller(t, { queueSize: 2 });
    await admitted(admission);
    await admitted(admission);
    track(admission.acquire("default"));
    track(admission.acquire("default"));
    const late = await admission.acquire("default");
    assert.equal(late.admitted, false);
    assert.equal((late as Rejection).reason, "queue-full");
  });

  it("lets a new critical evict the newest queued default from a full queue", async (t) => {
    const { admission } = controller(t, { queueSize: 2 });
    const running = [await admitted(admission), await admitted(admission)];
    const older = track(admission.acquire("default"));
    const newer = track(admission.acquire("default"));
    const critical = track(admission.acquire("critical"));
    await flush();
    assert.equal(rejectionOf(newer).reason, "queue-full", "the newest default made room");
    assert.equal(older.settled, false);
    assert.equal(critical.settled, false);
    running[0]!.release(OK);
    await flush();
    permitOf(critical);
    assert.equal(older.settled, false, "the critical went first");
    running[1]!.release(OK);
    await flush();
    permitOf(older);
  });

  it("rejects a new critical when only criticals wait in a full queue", async (t) => {
    const { admission } = controller(t, { queueSize: 1 });
    await admitted(admission);
    await admitted(admission);
    const first = track(admission.acquire("critical"));
    const second = await admission.acquire("critical");
    await flush();
    assert.equal((second as Rejection).reason, "queue-full");
    assert.equal(first.settled, false);
  });

  it("admits from the queue critical first, then FIFO within each class", async (t) => {
    const { admission } = controller(t, { limit: () => 1, queueSize: 10 });
    let permit = await admitted(admission);
    const order: string[] = [];
    const names = ["d1", "c1", "d2", "c2", "d3"];
    for (const name of names) {
      admission.acquire(name.startsWith("c") ? "critical" : "default").then((result) => {
        assert.equal(result.admitted, true);
        order.push(name);
        permit = result as Permit;
      });
    }
    for (let i = 0; i < names.length; i++) {
      permit.release(OK);
      await flush();
    }
    assert.deepEqual(order, ["c1", "c2", "d1", "d2", "d3"]);
  });

  it("keeps the queue ahead of newcomers: a release admits the head, not the next arrival", async (t) => {
    const { admission } = controller(t, { limit: () => 1 });
    const running = await admitted(admission);
    const queued = track(admission.acquire("default"));
    running.release(OK);
    const newcomer = track(admission.acquire("sheddable"));
    await flush();
    permitOf(queued);
    assert.equal(rejectionOf(newcomer).reason, "over-limit");
    assert.equal(admission.inFlight, 1);
  });

  it("rejects a request queued past queueTimeoutMs with queue-timeout (injected clock)", async (t) => {
    const { admission, clock } = controller(t, { queueTimeoutMs: 500 });
    const running = await admitted(admission);
    await admitted(admission);
    const early = track(admission.acquire("default"));
    clock.advance(300);
    const late = track(admission.acquire("critical"));
    clock.advance(200);
    running.release(OK);
    await flush();
    assert.equal(rejectionOf(early).reason, "queue-timeout", "500 ms in the queue");
    permitOf(late);
    assert.equal(admission.stats().rejected["queue-timeout"].default, 1);
  });

  it("times out queued requests on its own timer, with nothing else happening", async () => {
    const admission = new AdmissionController({ limit: () => 0, queueSize: 5, queueTimeoutMs: 30 });
    const started = performance.now();
    const results = await Promise.all([admission.acquire("default"), admission.acquire("critical")]);
    assert.deepEqual(
      results.map((r) => (r as Rejection).reason),
      ["queue-timeout", "queue-timeout"],
    );
    assert.ok(performance.now() - started >= 29);
    assert.equal(admission.queued, 0);
  });

  it("re-arms its timer for the next deadline, so later waiters time out too", async (t) => {
    const { admission, clock } = controller(t, { limit: () => 0, queueTimeoutMs: 20 });
    const order: string[] = [];
    const first = admission.acquire("default").then((r) => order.push(`first:${(r as Rejection).reason}`));
    clock.advance(10);
    const second = admission.acquire("critical").then((r) => order.push(`second:${(r as Rejection).reason}`));
    // The fake clock stands still: only the controller's own timer can expire these.
    await Promise.all([first, second]);
    assert.deepEqual(order, ["first:queue-timeout", "second:queue-timeout"]);
  });

  it("leaves no timer running once the queue is empty", async (t) => {
    const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
    const before = timers();
    const { admission } = controller(t, { limit: () => 1 });
    const running = await admitted(admission);
    const queued = track(admission.acquire("default"));
    assert.equal(timers(), before + 1, "one timer for the queue's deadline");
    running.release(OK);
    await flush();
    permitOf(queued).release(OK);
    assert.equal(timers(), before);
  });

  it("rejects with aborted and removes from the queue when the signal aborts", async (t) => {
    const { admission } = controller(t, { limit: () => 1 });
    const running = await admitted(admission);
    const abort = new AbortController();
    const leaving = track(admission.acquire("default", abort.signal));
    const staying = track(admission.acquire("default"));
    abort.abort();
    await flush();
    assert.equal(rejectionOf(leaving).reason, "aborted");
    assert.equal(admission.queued, 1);
    running.release(OK);
    await flush();
    permitOf(staying);
  });

  it("rejects at once a request whose signal is already aborted, even under the limit", async (t) => {
    const { admission } = controller(t);
    const result = await admission.acquire("critical", AbortSignal.abort());
    assert.equal((result as Rejection).reason, "aborted");
    assert.equal(admission.inFlight, 0);
  });

  it("releases each permit at most once", async (t) => {
    const { admission } = controller(t, { limit: () => 1 });
    const permit = await admitted(admission);
    const queued = track(admission.acquire("default"));
    permit.release(OK);
    permit.release(OK);
    await flush();
    permitOf(queued);
    assert.equal(admission.inFlight, 1, "the second release did not free a slot");
  });

  it("admits queued requests when told the limit grew", async (t) => {
    let limit = 1;
    const { admission } = controller(t, { limit: () => limit });
    await admitted(admission);
    const waiting = [track(admission.acquire("default")), track(admission.acquire("default"))];
    limit = 3;
    admission.limitChanged();
    await flush();
    waiting.forEach(permitOf);
    assert.equal(admission.inFlight, 3);
  });

  it("derives retryAfterSeconds from the backlog and the mean latency, at least 1", async (t) => {
    // One slot, mean latency 2 s, and a backlog: (queued + 1) × 2 s ÷ 1 slot.
    const { admission: slow } = controller(t, {
      limit: () => 1,
      queueSize: 3,
      maxQueueSize: 3,
      maxRetryAfterSeconds: 10,
    });
    (await admitted(slow)).release({ latencyMs: 2_000, dropped: false });
    await admitted(slow);
    assert.equal(((await slow.acquire("sheddable")) as Rejection).retryAfterSeconds, 2);
    track(slow.acquire("default"));
    track(slow.acquire("default"));
    assert.equal(((await slow.acquire("sheddable")) as Rejection).retryAfterSeconds, 6);
    track(slow.acquire("default"));
    const full = (await slow.acquire("default")) as Rejection;
    assert.equal(full.reason, "queue-full");
    assert.equal(full.retryAfterSeconds, 8);
    // Dropped requests say nothing about latency: they do not move the estimate.
    const { admission: fast } = controller(t, { limit: () => 1 });
    (await admitted(fast)).release({ latencyMs: 100, dropped: false });
    (await admitted(fast)).release({ latencyMs: 50_000, dropped: true });
    await admitted(fast);
    assert.equal(((await fast.acquire("sheddable")) as Rejection).retryAfterSeconds, 1);
  });

  it("queues beyond queueSize what the limit can serve before the queue timeout, up to maxQueueSize", async (t) => {
    // Limit 2, queue timeout 60 s, mean latency 10 s: 2 × 60 / 10 = 12 may wait, though queueSize is 3.
    const { admission } = controller(t, { limit: () => 2, queueSize: 3, maxQueueSize: 20 });
    assert.equal(admission.stats().queueBound, 3, "no latency seen yet: queueSize");
    (await admitted(admission)).release({ latencyMs: 10_000, dropped: false });
    assert.equal(admission.stats().queueBound, 12);
    await admitted(admission);
    await admitted(admission);
    const waiting = Array.from({ length: 12 }, () => track(admission.acquire("default")));
    const late = await admission.acquire("default");
    assert.equal((late as Rejection).reason, "queue-full", "the 13th would not be served in time");
    await flush();
    assert.ok(waiting.every((w) => !w.settled));
    assert.equal(admission.queued, 12);

    // Fast service: 2 × 60 s / 1 ms would be 120,000; maxQueueSize caps the queue at 20.
    const { admission: fast } = controller(t, { limit: () => 2, queueSize: 3, maxQueueSize: 20 });
    (await admitted(fast)).release({ latencyMs: 1, dropped: false });
    assert.equal(fast.stats().queueBound, 20);
    // Slow service: 2 × 60 s / 100 s rounds down to 1; queueSize stays the floor.
    const { admission: slow } = controller(t, { limit: () => 2, queueSize: 3 });
    (await admitted(slow)).release({ latencyMs: 100_000, dropped: false });
    assert.equal(slow.stats().queueBound, 3);
    // queueSize 0 means no queue at all, whatever the latency (maxQueueSize defaults to 10 × 0).
    const { admission: none } = controller(t, { limit: () => 1, queueSize: 0 });
    (await admitted(none)).release({ latencyMs: 1, dropped: false });
    await admitted(none);
    assert.equal(((await none.acquire("default")) as Rejection).reason, "queue-full");
  });

  it("refuses a maxQueueSize below queueSize", () => {
    assert.throws(
      () => new AdmissionController({ limit: () => 1, queueSize: 5, maxQueueSize: 4, queueTimeoutMs: 1 }),
      /maxQueueSize/,
    );
  });

  it("caps retryAfterSeconds at maxRetryAfterSeconds", async (t) => {
    const { admission } = controller(t, { limit: () => 1, maxRetryAfterSeconds: 5 });
    (await admitted(admission)).release({ latencyMs: 60_000, dropped: false });
    await admitted(admission);
    assert.equal(((await admission.acquire("sheddable")) as Rejection).retryAfterSeconds, 5);
  });

  it("reports stats: in flight, queued and admitted by class, rejections by reason and class", async (t) => {
    const { admission } = controller(t, { queueSize: 1 });
    await admitted(admission, "critical");
    await admitted(admission, "default");
    await admission.acquire("sheddable");
    track(admission.acquire("default"));
    await admission.acquire("default");
    const stats = admission.stats();
    assert.equal(stats.inFlight, 2);
    assert.equal(stats.limit, 2);
    assert.deepEqual(stats.queued, { critical: 0, default: 1 });
    assert.deepEqual(stats.admitted, { critical: 1, default: 1, sheddable: 0 });
    assert.equal(stats.rejected["over-limit"].sheddable, 1);
    assert.equal(stats.rejected["queue-full"].default, 1);
    assert.equal(stats.rejected["queue-timeout"].critical, 0);
  });

  it("serviceLimit sums per-instance limits, ignoring negative or NaN ones", () => {
    assert.equal(serviceLimit([]), 0);
    assert.equal(serviceLimit([3, 5, 12]), 20);
    assert.equal(serviceLimit(new Set([4, -1, Number.NaN, 6])), 10);
    assert.equal(serviceLimit([Math.min(8, 20), Math.min(8, 3)]), 11);
  });
});
