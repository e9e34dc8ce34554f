import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { securityCheck } from "../../../src/decide/rollback/securityCheck.ts";
import type { SecuritySpec } from "../../../src/spec/model.ts";

const subject = {
  service: "checkout",
  label: "v1",
  versions: ["v1"],
  secrets: [
    { name: "db-password", version: "5" },
    { name: "api-key", version: "2" },
  ],
};

const none: SecuritySpec = { deniedReleases: [], revokedSecrets: [] };

describe("securityCheck", () => {
  it("is ok when the release is not denied and none of its secrets is revoked", () => {
    const check = securityCheck(subject, {
      deniedReleases: [{ service: "orders", version: "v1", reason: "other service" }],
      revokedSecrets: [{ name: "db-password", version: "4", reason: "older version" }],
    });
    assert.equal(check.severity, "ok");
    assert.equal(check.detail, "v1 is not on the deny list and uses no revoked secret");
  });

  it("blocks a denied release and gives the reason", () => {
    const check = securityCheck(subject, {
      ...none,
      deniedReleases: [{ service: "checkout", version: "v1", reason: "CVE-2025-1234 in the image" }],
    });
    assert.equal(check.severity, "blocking");
    assert.deepEqual(check.findings, [
      {
        field: "deniedReleases",
        actual: "checkout v1",
        message: "checkout v1 is on the deny list: CVE-2025-1234 in the image",
      },
    ]);
  });

  it("blocks a release whose secret version was revoked", () => {
    const check = securityCheck(subject, {
      ...none,
      revokedSecrets: [{ name: "db-password", version: "5", reason: "leaked in a log" }],
    });
    assert.equal(check.severity, "blocking");
    assert.equal(check.findings.length, 1);
    assert.equal(check.findings[0]!.field, "secrets.db-password");
    assert.equal(
      check.findings[0]!.message,
      "v1 uses secret db-password version 5, which was revoked (leaked in a log): a rollback never restores a revoked secret",
    );
  });

  it("reports an entry present in both lists once", () => {
    const denied = { service: "checkout", version: "v1", reason: "bad" };
    const check = securityCheck(subject, { deniedReleases: [denied, { ...denied }], revokedSecrets: [] });
    assert.equal(check.findings.length, 1);
  });

  it("checks every version whose code would run", () => {
    const check = securityCheck(
      { ...subject, label: "v1+config-v2", versions: ["v1+config-v2", "v1"] },
      { ...none, deniedReleases: [{ service: "checkout", version: "v1", reason: "bad build" }] },
    );
    assert.equal(check.severity, "blocking");
  });
});
