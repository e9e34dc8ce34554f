import assert from "node:assert/strict";
import { test } from "node:test";
import { renderEvent } from "../../src/cli/commands/events.ts";

const base = {
  seq: 1,
  at: Date.UTC(2026, 10, 26, 9, 0, 0),
  reason: "failover-step",
  message: "zone-a keeps 75 %",
};

test("an event names its instance, else its service, else the zone in its data, else '-'", () => {
  const cell = (line: string) => line.split(/\s+/)[2];
  assert.equal(
    cell(renderEvent({ ...base, type: "failover.step", instance: "api-0", service: "api" })),
    "api-0",
  );
  assert.equal(cell(renderEvent({ ...base, type: "failover.step", service: "api" })), "api");
  assert.equal(
    cell(renderEvent({ ...base, type: "failover.step", data: { zone: "zone-a", share: 0.75 } })),
    "zone-a",
  );
  assert.equal(cell(renderEvent({ ...base, type: "controller.stopping", data: { zone: 7 } })), "-");
  assert.match(renderEvent({ ...base, type: "failover.step" }), /\[failover-step\] zone-a keeps 75 %$/);
});
