import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { Bulkhead, BulkheadRejectedError } from "../../../src/traffic/policies/bulkhead.ts";
import { deferred, fakeClock, flush, track } from "./kit.ts";

function rejectedWith(reason: BulkheadRejectedError["reason"]) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof BulkheadRejectedError, `not a BulkheadRejectedError: ${error}`);
    assert.equal(error.reason, reason);
    return true;
  };
}

describe("Bulkhead", () => {
  it("runs at most maxConcurrent calls and starts the waiting ones in FIFO order", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 2, maxQueue: 10, queueTimeoutMs: 60_000 });
    const gates = Array.from({ length: 5 }, () => deferred<void>());
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const calls = gates.map((gate, i) =>
      bulkhead.execute(async () => {
        started.push(i);
        running++;
        peak = Math.max(peak, running);
        await gate.promise;
        running--;
        return i;
      }),
    );
    await flush();
    assert.deepEqual(started, [0, 1]);
    assert.equal(bulkhead.executing, 2);
    assert.equal(bulkhead.queued, 3);
    for (const gate of [gates[1]!, gates[0]!, gates[2]!, gates[3]!, gates[4]!]) {
      gate.resolve();
      await flush();
    }
    assert.deepEqual(await Promise.all(calls), [0, 1, 2, 3, 4]);
    assert.deepEqual(started, [0, 1, 2, 3, 4]);
    assert.equal(peak, 2);
    assert.equal(bulkhead.executing, 0);
  });

  it("rejects at once with queue-full when the queue is full, without calling fn", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
    const gate = deferred<void>();
    const first = bulkhead.execute(() => gate.promise);
    const second = bulkhead.execute(async () => {});
    let called = false;
    await assert.rejects(
      bulkhead.execute(async () => {
        called = true;
      }),
      rejectedWith("queue-full"),
    );
    assert.equal(called, false);
    gate.resolve();
    await Promise.all([first, second]);
  });

  it("with maxQueue 0 never queues", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 60_000 });
    const gate = deferred<void>();
    const first = bulkhead.execute(() => gate.promise);
    await assert.rejects(
      bulkhead.execute(async () => {}),
      rejectedWith("queue-full"),
    );
    gate.resolve();
    await first;
  });

  it("rejects a call that waited queueTimeoutMs with queue-timeout (real timer)", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 30 });
    const gate = deferred<void>();
    const first = bulkhead.execute(() => gate.promise);
    let called = false;
    await assert.rejects(
      bulkhead.execute(async () => {
        called = true;
      }),
      rejectedWith("queue-timeout"),
    );
    assert.equal(called, false);
    assert.equal(bulkhead.queued, 0);
    gate.resolve();
    await first;
  });

  it("skips a waiter whose time ran out when a slot frees (injected clock)", async () => {
    const clock = fakeClock();
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 1_000, now: clock.now });
    const gate = deferred<void>();
    const first = bulkhead.execute(() => gate.promise);
    const expired = track(bulkhead.execute(async () => "expired ran"));
    clock.advance(600);
    const fresh = track(bulkhead.execute(async () => "fresh ran"));
    clock.advance(400);
    gate.resolve();
    await first;
    await flush();
    assert.ok(expired.error instanceof BulkheadRejectedError);
    assert.equal(expired.error.reason, "queue-timeout");
    assert.equal(fresh.value, "fresh ran");
  });

  it("rejects with aborted (the abort reason as cause) and never runs an aborted waiter", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 5, queueTimeoutMs: 60_000 });
    const gate = deferred<void>();
    const first = bulkhead.execute(() => gate.promise);
    const abort = new AbortController();
    let called = false;
    const waiting = bulkhead.execute(async () => {
      called = true;
    }, abort.signal);
    const reason = new Error("caller gave up");
    abort.abort(reason);
    await assert.rejects(waiting, (error: unknown) => {
      rejectedWith("aborted")(error);
      assert.equal((error as Error).cause, reason);
      return true;
    });
    gate.resolve();
    await first;
    assert.equal(called, false);
  });

  it("passes fn's failure through and frees its slot", async () => {
    const bulkhead = new Bulkhead({ maxConcurrent: 1, maxQueue: 0, queueTimeoutMs: 1_000 });
    await assert.rejects(
      bulkhead.execute(() => Promise.reject(new Error("boom"))),
      /boom/,
    );
    assert.equal(bulkhead.executing, 0);
    assert.equal(await bulkhead.execute(async () => "next"), "next");
  });

  it("refuses a maxConcurrent below 1", () => {
    assert.throws(
      () => new Bulkhead({ maxConcurrent: 0, maxQueue: 1, queueTimeoutMs: 1 }),
      (error: unknown) => error instanceof HomeostatError && error.code === "HS_POLICY_INVALID",
    );
  });
});
