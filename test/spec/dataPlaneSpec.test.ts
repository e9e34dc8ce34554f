/** The fleet file's `dataPlane` mapping: worker count, defaults, and errors with positions. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSpecError, parseFleet } from "../../src/spec/index.ts";

const fleet = (dataPlane: string) =>
  `version: 1\n${dataPlane}services:\n  api:\n    replicas: 1\n    basePort: 18000\n    port: 18100\n    release: v1\n    releases: { v1: { command: node } }\n`;

test("dataPlane.workers: 1 by default, a number or auto as written", () => {
  for (const [text, workers] of [
    ["", 1],
    ["dataPlane: { workers: 3 }\n", 3],
    ["dataPlane: { workers: auto }\n", "auto"],
  ] as const) {
    const result = parseFleet(fleet(text), "fleet.yaml");
    assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
    assert.equal(result.fleet.dataPlane.workers, workers);
  }
});

test("dataPlane.workers out of range or an unknown key: file:line:col errors", () => {
  for (const [text, expected] of [
    [
      "dataPlane: { workers: 0 }\n",
      /fleet\.yaml:2:23: dataPlane\.workers: expected "auto" or a whole number from 1 to 64/,
    ],
    ["dataPlane: { workers: 2.5 }\n", /fleet\.yaml:2:23: dataPlane\.workers/],
    ["dataPlane: { threads: 2 }\n", /fleet\.yaml:2:14: dataPlane.*unknown key "threads"/],
  ] as const) {
    const result = parseFleet(fleet(text), "fleet.yaml");
    assert.equal(result.ok, false);
    if (result.ok) continue;
    assert.match(result.errors.map(formatSpecError).join("\n"), expected);
  }
});
