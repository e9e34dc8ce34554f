import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { evidenceCheck } from "../../../src/decide/rollback/evidenceCheck.ts";
import { record } from "./fixtures.ts";

describe("evidenceCheck", () => {
  it("is ok for a proven target and quotes its proof", () => {
    const check = evidenceCheck(record("v1", { at: 0, status: "proven" }));
    assert.equal(check.name, "evidence");
    assert.equal(check.severity, "ok");
    assert.equal(check.ok, true);
    assert.equal(
      check.detail,
      "v1 was proven at 2025-01-01T12:10:00.000Z with 12000 requests over 10 min, error rate 0.20 %, p99 84 ms",
    );
    assert.equal(check.findings.length, 1);
    assert.equal(check.findings[0]!.actual, "proven");
  });

  it("counts a release that was proven and later superseded as proven", () => {
    const target = { ...record("v1", { at: 0, status: "proven" }), status: "superseded" as const };
    const check = evidenceCheck(target);
    assert.equal(check.severity, "ok");
    assert.match(check.detail, /^v1 was proven at /);
  });

  it("says when a proof carries no latency data or no evidence at all", () => {
    const proven = record("v1", { at: 0, status: "proven" });
    const noLatency = evidenceCheck({ ...proven, evidence: { ...proven.evidence!, p99Ms: null } });
    assert.match(noLatency.detail, /p99 no latency data$/);
    const noEvidence = evidenceCheck({ ...proven, evidence: null });
    assert.equal(noEvidence.severity, "ok");
    assert.match(noEvidence.detail, /no traffic evidence was recorded/);
  });

  for (const status of ["active", "superseded", "deploying"] as const) {
    it(`warns for a ${status} target that was never proven`, () => {
      const check = evidenceCheck(record("v1", { at: 0, status }));
      assert.equal(check.severity, "warning");
      assert.equal(check.ok, false);
      assert.equal(
        check.detail,
        "v1 was never proven: it did not serve all traffic within its SLO for the soak window",
      );
      assert.deepEqual(
        { expected: check.findings[0]!.expected, actual: check.findings[0]!.actual },
        { expected: "proven", actual: status },
      );
    });
  }

  it("blocks a target that failed here", () => {
    const check = evidenceCheck(record("v1", { at: 0, status: "failed" }));
    assert.equal(check.severity, "blocking");
    assert.equal(check.detail, "v1 already failed here: it failed its deploy");
  });

  it("blocks a target that was rolled back, even if it had been proven before", () => {
    const once = record("v1", { at: 0, status: "proven" });
    const check = evidenceCheck({ ...once, status: "rolled-back" });
    assert.equal(check.severity, "blocking");
    assert.equal(check.detail, "v1 already failed here: it was rolled back");
  });
});
