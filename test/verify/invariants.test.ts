/**
 * The pure evaluation of security invariants: what one probe round means. Nothing fails open:
 * an instance that could not be probed makes the verdict unchecked, never ok.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  brokenByInvariant,
  evaluateInvariants,
  type InstanceObservation,
  policyHashName,
  protectedPathName,
} from "../../src/verify/invariants.ts";

function instance(
  name: string,
  admin: number | null,
  hash: string | null,
  extra: { status?: number; expected?: string; release?: string } = {},
): InstanceObservation {
  return {
    instance: name,
    ...(extra.release === undefined ? {} : { release: extra.release }),
    protectedPaths: [{ path: "/admin", method: "GET", expect: [401, 403], status: admin }],
    policy: {
      path: "/policy",
      hash,
      ...(hash === null && extra.status === undefined ? { error: "connect ECONNREFUSED" } : {}),
      ...(extra.status === undefined ? {} : { status: extra.status }),
      ...(extra.expected === undefined ? {} : { expected: extra.expected }),
    },
  };
}

const ADMIN = protectedPathName("get", "/admin");
const POLICY = policyHashName("/policy");

describe("evaluateInvariants", () => {
  test("every instance refusing and reporting one hash: ok and checked", () => {
    const verdict = evaluateInvariants({
      instances: [instance("api-0", 401, "h1"), instance("api-1", 403, "h1")],
      now: 1000,
    });
    assert.deepEqual(verdict, { ok: true, checked: true, broken: [], lastCheckedAt: 1000 });
  });

  test("a protected path answering 200, a redirect or 404 is broken, naming the instance", () => {
    for (const status of [200, 204, 302, 404, 500]) {
      const verdict = evaluateInvariants({
        instances: [instance("api-0", 401, "h1"), instance("api-1", status, "h1")],
        now: 1000,
      });
      assert.equal(verdict.ok, false, `status ${status}`);
      assert.equal(verdict.checked, true);
      assert.equal(verdict.broken.length, 1);
      const [broken] = verdict.broken;
      assert.equal(broken?.invariant, ADMIN);
      assert.equal(broken?.kind, "protected-path");
      assert.equal(broken?.instance, "api-1");
      assert.equal(broken?.since, 1000);
      assert.match(
        broken?.detail ?? "",
        new RegExp(`GET /admin answered ${status} without credentials on api-1`),
      );
    }
  });

  test("a protected path that could not be requested is unchecked, not ok and not broken", () => {
    const verdict = evaluateInvariants({
      instances: [instance("api-0", 401, "h1"), instance("api-1", null, "h1")],
      now: 1000,
    });
    assert.deepEqual(verdict, { ok: false, checked: false, broken: [], lastCheckedAt: null });
  });

  test("no ready instance at all proves nothing: unchecked", () => {
    const verdict = evaluateInvariants({ instances: [], now: 5 });
    assert.equal(verdict.ok, false);
    assert.equal(verdict.checked, false);
  });

  test("a policy hash that differs names the instance off the majority", () => {
    const verdict = evaluateInvariants({
      instances: [instance("api-0", 401, "h1"), instance("api-1", 401, "h2"), instance("api-2", 401, "h1")],
      now: 1000,
    });
    assert.equal(verdict.ok, false);
    assert.equal(verdict.checked, true);
    assert.deepEqual(
      verdict.broken.map((b) => [b.invariant, b.kind, b.instance]),
      [[POLICY, "policy-hash", "api-1"]],
    );
    assert.match(
      verdict.broken[0]?.detail ?? "",
      /api-1 reports policy hash h2 on \/policy, the other instances h1/,
    );
  });

  test("a tie between two hashes is still broken, deterministically", () => {
    const a = evaluateInvariants({
      instances: [instance("api-0", 401, "zz"), instance("api-1", 401, "aa")],
      now: 1,
    });
    const b = evaluateInvariants({
      instances: [instance("api-1", 401, "aa"), instance("api-0", 401, "zz")],
      now: 1,
    });
    assert.equal(a.ok, false);
    assert.deepEqual(
      a.broken.map((x) => x.instance),
      ["api-0"],
    );
    assert.deepEqual(
      b.broken.map((x) => x.instance),
      ["api-0"],
    );
  });

  test("a hash other than the one the release declares is broken, even when all instances agree", () => {
    const verdict = evaluateInvariants({
      instances: [
        instance("api-0", 401, "h1", { expected: "h9", release: "v2" }),
        instance("api-1", 401, "h1", { expected: "h9", release: "v2" }),
      ],
      now: 1,
    });
    assert.equal(verdict.ok, false);
    assert.deepEqual(
      verdict.broken.map((b) => b.instance),
      ["api-0", "api-1"],
    );
    assert.match(verdict.broken[0]?.detail ?? "", /its release v2 declares h9/);
  });

  test("a policy endpoint that answers without a hash is broken; one that does not answer is unchecked", () => {
    const unreadable = evaluateInvariants({
      instances: [instance("api-0", 401, "h1"), instance("api-1", 401, null, { status: 404 })],
      now: 1,
    });
    assert.equal(unreadable.ok, false);
    assert.equal(unreadable.checked, true);
    assert.deepEqual(
      unreadable.broken.map((b) => [b.invariant, b.instance]),
      [[POLICY, "api-1"]],
    );
    const silent = evaluateInvariants({
      instances: [instance("api-0", 401, "h1"), instance("api-1", 401, null)],
      now: 1,
    });
    assert.deepEqual(silent, { ok: false, checked: false, broken: [], lastCheckedAt: null });
  });

  test("since survives across rounds while the same instance keeps breaking it", () => {
    const first = evaluateInvariants({ instances: [instance("api-0", 200, "h1")], now: 1000 });
    const second = evaluateInvariants({
      instances: [instance("api-0", 200, "h1")],
      now: 3000,
      previous: first,
    });
    assert.equal(second.broken[0]?.since, 1000);
    assert.equal(second.lastCheckedAt, 3000);
    const other = evaluateInvariants({
      instances: [instance("api-1", 200, "h1")],
      now: 5000,
      previous: second,
    });
    assert.equal(other.broken[0]?.since, 5000);
  });

  test("an unchecked round keeps the last complete round's time", () => {
    const first = evaluateInvariants({ instances: [instance("api-0", 401, "h1")], now: 1000 });
    const second = evaluateInvariants({
      instances: [instance("api-0", null, "h1")],
      now: 3000,
      previous: first,
    });
    assert.equal(second.checked, false);
    assert.equal(second.lastCheckedAt, 1000);
  });

  test("broken and unchecked at once: not ok, not checked, the break still listed", () => {
    const verdict = evaluateInvariants({
      instances: [instance("api-0", 200, "h1"), instance("api-1", null, "h1")],
      now: 1,
    });
    assert.equal(verdict.ok, false);
    assert.equal(verdict.checked, false);
    assert.equal(verdict.broken.length, 1);
  });

  test("brokenByInvariant groups the instances of one invariant (one incident each)", () => {
    const verdict = evaluateInvariants({
      instances: [instance("api-0", 200, "h1"), instance("api-1", 200, "h2"), instance("api-2", 401, "h1")],
      now: 1,
    });
    const groups = brokenByInvariant(verdict.broken);
    assert.deepEqual(
      [...groups].map(([name, list]) => [name, list.map((b) => b.instance)]),
      [
        [ADMIN, ["api-0", "api-1"]],
        [POLICY, ["api-1"]],
      ],
    );
  });
});
