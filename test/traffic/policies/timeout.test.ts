import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TimeoutError, withTimeout } from "../../../src/traffic/policies/timeout.ts";
import { deferred } from "./kit.ts";

function activeTimers(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === "Timeout").length;
}

describe("withTimeout", () => {
  it("resolves with the work's value and leaves no timer behind", async () => {
    const before = activeTimers();
    let seen: AbortSignal | undefined;
    const value = await withTimeout(async (signal) => {
      seen = signal;
      return 42;
    }, 60_000);
    assert.equal(value, 42);
    assert.equal(seen?.aborted, false);
    assert.equal(activeTimers(), before, "the 60 s timer was cleared");
  });

  it("on timeout aborts the inner signal and rejects with a TimeoutError carrying timeoutMs", async () => {
    let inner: AbortSignal | undefined;
    const work = deferred<string>();
    await assert.rejects(
      withTimeout((signal) => {
        inner = signal;
        return work.promise;
      }, 30),
      (error: unknown) => {
        assert.ok(error instanceof TimeoutError);
        assert.equal(error.timeoutMs, 30);
        assert.equal(error.name, "TimeoutError");
        return true;
      },
    );
    assert.equal(inner?.aborted, true);
    assert.ok(inner?.reason instanceof TimeoutError);
    // The abandoned work settling later changes nothing and raises no unhandled rejection.
    work.reject(new Error("too late"));
  });

  it("times out work that ignores its signal (the caller is not held hostage)", async () => {
    await assert.rejects(
      withTimeout(() => new Promise<never>(() => {}), 20),
      TimeoutError,
    );
  });

  it("on an outer abort aborts the inner signal and rejects with the outer reason", async () => {
    const outer = new AbortController();
    let inner: AbortSignal | undefined;
    const work = deferred<void>();
    const pending = withTimeout(
      (signal) => {
        inner = signal;
        return work.promise;
      },
      60_000,
      outer.signal,
    );
    const reason = new Error("client went away");
    outer.abort(reason);
    await assert.rejects(pending, (error: unknown) => error === reason);
    assert.equal(inner?.aborted, true);
    assert.equal(inner?.reason, reason);
  });

  it("does not start the work when the outer signal is already aborted", async () => {
    const outer = new AbortController();
    outer.abort(new Error("gone"));
    let called = false;
    await assert.rejects(
      withTimeout(
        async () => {
          called = true;
        },
        1_000,
        outer.signal,
      ),
      /gone/,
    );
    assert.equal(called, false);
  });

  it("passes the work's own rejection through, including a synchronous throw", async () => {
    await assert.rejects(
      withTimeout(() => Promise.reject(new Error("boom")), 1_000),
      /boom/,
    );
    await assert.rejects(
      withTimeout(() => {
        throw new Error("sync boom");
      }, 1_000),
      /sync boom/,
    );
  });
});
