/**
 * The "no action done twice" checks of the HA tests (test/helpers/haChecks.ts) find what they are
 * meant to find: cases that must be flagged, and the sequences a takeover legitimately leaves.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  driverViolations,
  entriesOfToken,
  journalViolations,
  processViolations,
} from "../helpers/haChecks.ts";
import type { DriverLine, EventRow, JournalRow } from "../helpers/haFleet.ts";

let nextId = 1;
function entry(
  action: string,
  target: string,
  at: number,
  detail: string | null,
  token = 1,
  ok = true,
): JournalRow {
  return {
    id: nextId++,
    at,
    action,
    target,
    reason: "test",
    data: null,
    result: detail === null ? null : { at: at + 1, ok, detail },
    token,
  };
}
function exited(instance: string, at: number): EventRow {
  return {
    seq: at,
    at,
    type: "instance.exited",
    service: "api",
    instance,
    reason: "x",
    message: "x",
    data: null,
  };
}
function starts(...pids: number[]): DriverLine[] {
  return pids.map((pid) => ({ at: 0, kind: "start", instance: "api-0", pid }));
}

test("a start, a stop, a start again after the stop or after an exit: nothing twice", () => {
  const journal = [
    entry("start", "api-0", 10, "pid 100"),
    entry("stop", "api-0", 20, "exited with signal SIGTERM"),
    entry("start", "api-0", 30, "pid 101", 2),
    entry("start", "api-0", 50, "pid 102", 2),
    entry("stop", "api-1", 60, "already gone"),
  ];
  assert.deepEqual(journalViolations(journal, [exited("api-0", 40)]), []);
  assert.deepEqual(driverViolations(journal, new Map([["api-0", starts(100, 101, 102)]])), []);
});

test("a second start of a live instance is flagged, whichever token ordered it", () => {
  const journal = [entry("start", "api-0", 10, "pid 100", 1), entry("start", "api-0", 30, "pid 101", 2)];
  const problems = journalViolations(journal, [exited("api-0", 5)]);
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /api-0 started twice/);
});

test("an open intent, a stop of a stopped instance and one pid journaled twice are flagged", () => {
  const journal = [
    entry("start", "api-0", 10, "pid 100"),
    entry("stop", "api-0", 20, "exited with code 0"),
    entry("stop", "api-0", 30, "exited with code 0"),
    entry("start", "api-0", 40, "pid 100"),
    entry("start", "api-1", 50, null),
  ];
  const problems = journalViolations(journal, []).join("\n");
  assert.match(problems, /start api-1 \(token 1\) left open/);
  assert.match(problems, /api-0 stopped while the journal has it down/);
  assert.match(problems, /pid 100 journaled as started by/);
});

test("the driver's record must match the journal's starts, both ways", () => {
  const journal = [entry("start", "api-0", 10, "pid 100"), entry("start", "api-0", 30, "pid 101")];
  const problems = driverViolations(journal, new Map([["api-0", starts(100, 100, 102)]])).join("\n");
  assert.match(problems, /started pid 100 twice/);
  assert.match(problems, /started pid 102, which no journal start names/);
  assert.match(problems, /journal starts of pid 101 the driver never started/);
  // A failed start names no pid and the driver started nothing: fine.
  assert.deepEqual(driverViolations([entry("start", "api-0", 10, "HS_FENCED", 1, false)], new Map()), []);
});

test("live processes must be exactly the recorded ones, one group each", () => {
  const recorded = new Map([
    ["api-0", 100],
    ["api-1", 200],
  ]);
  assert.deepEqual(
    processViolations(
      new Map([
        ["api-0", new Set([100])],
        ["api-1", new Set([200])],
      ]),
      recorded,
    ),
    [],
  );
  const problems = processViolations(
    new Map([
      ["api-0", new Set([100, 150])],
      ["api-2", new Set([300])],
    ]),
    recorded,
  ).join("\n");
  assert.match(problems, /api-0: the store records pid 100, running process groups 100,150/);
  assert.match(problems, /api-2 runs .* unknown to the store/);
  assert.match(problems, /api-1: the store records pid 200, which does not run/);
});

test("entries of a fenced token after the takeover", () => {
  const journal = [
    entry("start", "api-0", 10, "pid 1", 1),
    entry("start", "api-1", 30, "pid 2", 1),
    entry("start", "api-2", 40, "pid 3", 2),
  ];
  assert.deepEqual(
    entriesOfToken(journal, 1, 20).map((e) => e.target),
    ["api-1"],
  );
});
