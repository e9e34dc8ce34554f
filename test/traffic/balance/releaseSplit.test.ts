import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HomeostatError } from "../../../src/errors.ts";
import { freezeWeights, releaseShares } from "../../../src/traffic/balance/releaseSplit.ts";

const usable = (entries: Record<string, number>) => new Map(Object.entries(entries));

describe("releaseShares", () => {
  it("shares by weight among releases with usable endpoints", () => {
    const shares = releaseShares(freezeWeights({ v1: 90, v2: 10 })!, usable({ v1: 3, v2: 1 }));
    assert.deepEqual(
      [...shares],
      [
        ["v1", 0.9],
        ["v2", 0.1],
      ],
    );
  });

  it("gives an unusable release's share to the others, in proportion", () => {
    const shares = releaseShares(freezeWeights({ v1: 60, v2: 30, v3: 10 })!, usable({ v1: 2, v2: 2, v3: 0 }));
    assert.ok(Math.abs(shares.get("v1")! - 2 / 3) < 1e-12);
    assert.ok(Math.abs(shares.get("v2")! - 1 / 3) < 1e-12);
    assert.equal(shares.get("v3"), 0);
  });

  it("gives nothing to weight 0 or unweighted releases, even with endpoints", () => {
    const shares = releaseShares(freezeWeights({ v1: 100, v2: 0 })!, usable({ v1: 1, v2: 5, v3: 5 }));
    assert.deepEqual(
      [...shares],
      [
        ["v1", 1],
        ["v2", 0],
        ["v3", 0],
      ],
    );
  });

  it("is all zeros when no weighted release has a usable endpoint", () => {
    const shares = releaseShares(freezeWeights({ v2: 100 })!, usable({ v1: 3 }));
    assert.deepEqual(
      [...shares],
      [
        ["v2", 0],
        ["v1", 0],
      ],
    );
  });
});

describe("freezeWeights", () => {
  it("copies and freezes, so later changes to the caller's object have no effect", () => {
    const input = { v1: 1, v2: 3 };
    const frozen = freezeWeights(input)!;
    input.v1 = 100;
    assert.deepEqual(frozen, { v1: 1, v2: 3 });
    assert.ok(Object.isFrozen(frozen));
  });

  it("keeps null as no split", () => {
    assert.equal(freezeWeights(null), null);
  });

  for (const [label, weights] of [
    ["a negative weight", { v1: -1, v2: 2 }],
    ["a NaN weight", { v1: Number.NaN }],
    ["an infinite weight", { v1: Number.POSITIVE_INFINITY }],
    ["all zero weights", { v1: 0, v2: 0 }],
    ["no weights at all", {}],
  ] as const) {
    it(`refuses ${label}`, () => {
      assert.throws(
        () => freezeWeights(weights),
        (error: unknown) => error instanceof HomeostatError && error.code === "HS_BAD_REQUEST",
      );
    });
  }
});
