import assert from "node:assert/strict";
import { test } from "node:test";
import { notificationFor } from "../../src/notify/notification.ts";

test("an action held by an automation brake is notified as an escalation (automation-held)", () => {
  const notification = notificationFor(
    {
      seq: 42,
      at: 1_800_000_000_000,
      type: "automation.held",
      service: "api",
      instance: "api-1",
      reason: "brake-rate-limit",
      message: "automated restart of api-1 held: api had 10 automated restarts in the last 10 min (limit 10)",
      data: { kind: "restart", rule: "restart-rate", target: "api-1", used: 10, limit: 10, until: null },
    },
    { fleet: "shop", incident: () => null, openIncidents: () => [] },
  );
  assert.deepEqual(notification, {
    id: "shop:e42",
    at: 1_800_000_000_000,
    fleet: "shop",
    service: "api",
    type: "incident.escalated",
    reason: "brake-rate-limit",
    message:
      "automation held: automated restart of api-1 held: api had 10 automated restarts in the last 10 min (limit 10)",
    data: { escalation: "automation-held", rule: "restart-rate", kind: "restart", target: "api-1" },
  });
});
