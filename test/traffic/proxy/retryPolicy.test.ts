import assert from "node:assert/strict";
import { test } from "node:test";
import { type AttemptFailure, mayRetry, type RetryQuestion } from "../../../src/traffic/proxy/retryPolicy.ts";

function ask(method: string, failure: AttemptFailure, overrides: Partial<RetryQuestion> = {}): boolean {
  return mayRetry({ method, replayable: true, attempts: 1, maxAttempts: 3, failure, ...overrides });
}

test("idempotent methods retry transient failures, not application errors", () => {
  for (const method of ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"]) {
    assert.equal(ask(method, { outcome: "reset" }), true, method);
    assert.equal(ask(method, { outcome: "timeout" }), true, method);
    assert.equal(ask(method, { outcome: "connect-error" }), true, method);
    for (const status of [502, 503, 504]) assert.equal(ask(method, { outcome: "http-5xx", status }), true);
    assert.equal(ask(method, { outcome: "http-5xx", status: 500 }), false, "500 is an application error");
    assert.equal(ask(method, { outcome: "http-5xx", status: 501 }), false);
  }
});

test("non-idempotent methods retry only what never reached the upstream", () => {
  for (const method of ["POST", "PATCH"]) {
    assert.equal(ask(method, { outcome: "connect-error" }), true);
    assert.equal(ask(method, { outcome: "reset" }), false);
    assert.equal(ask(method, { outcome: "timeout" }), false);
    assert.equal(ask(method, { outcome: "http-5xx", status: 503 }), false);
  }
});

test("no retry past maxAttempts, for a streamed body, or for an upstream's own shedding", () => {
  assert.equal(ask("GET", { outcome: "reset" }, { attempts: 3 }), false);
  assert.equal(ask("GET", { outcome: "reset" }, { maxAttempts: 1 }), false);
  assert.equal(ask("GET", { outcome: "connect-error" }, { replayable: false }), false);
  assert.equal(ask("POST", { outcome: "connect-error" }, { replayable: false }), false);
  assert.equal(ask("GET", { outcome: "http-5xx", status: 503, shedByUpstream: true }), false);
});
