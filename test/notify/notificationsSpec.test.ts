/** The fleet file's `notifications` section: defaults, and errors with file:line:col. */

import assert from "node:assert/strict";
import { test } from "node:test";
import { formatSpecError, parseFleet } from "../../src/spec/index.ts";

const fleet = (notifications: string) =>
  `version: 1\n${notifications}services:\n  api:\n    replicas: 1\n    basePort: 18000\n    release: v1\n    releases: { v1: { command: node } }\n`;

function errors(text: string): string {
  const result = parseFleet(fleet(text), "fleet.yaml");
  assert.equal(result.ok, false, "the file should be refused");
  return result.ok ? "" : result.errors.map(formatSpecError).join("\n");
}

test("no section: no webhooks; a webhook gets every event, 5 s per attempt and 5 attempts by default", () => {
  const none = parseFleet(fleet(""), "fleet.yaml");
  assert.ok(none.ok);
  assert.deepEqual(none.fleet.notifications, { webhooks: [] });
  const text = [
    "notifications:",
    "  webhooks:",
    "    - { name: ops, url: 'https://hooks.example/x', format: slack }",
    "    - name: audit",
    "      url: http://127.0.0.1:9000/hook",
    "      format: generic",
    "      events: [failover.ended, incident.opened]",
    "      secretEnv: HOOK_SECRET",
    "      timeout: 1.5s",
    "      maxAttempts: 3",
    "",
  ].join("\n");
  const result = parseFleet(fleet(text), "fleet.yaml");
  assert.ok(result.ok, result.ok ? "" : result.errors.map(formatSpecError).join("\n"));
  assert.deepEqual(result.fleet.notifications?.webhooks, [
    {
      name: "ops",
      url: "https://hooks.example/x",
      format: "slack",
      events: [
        "incident.opened",
        "incident.escalated",
        "incident.verified",
        "deploy.rolled-back",
        "failover.started",
        "failover.ended",
      ],
      secretEnv: null,
      timeoutMs: 5000,
      maxAttempts: 5,
    },
    {
      name: "audit",
      url: "http://127.0.0.1:9000/hook",
      format: "generic",
      events: ["incident.opened", "failover.ended"],
      secretEnv: "HOOK_SECRET",
      timeoutMs: 1500,
      maxAttempts: 3,
    },
  ]);
});

test("bad webhooks are reported at their position, every one of them", () => {
  const text = [
    "notifications:",
    "  webhooks:",
    "    - name: ops",
    "      url: ftp://example/x",
    "      format: teams",
    "      events: [incident.opend]",
    "      secret: abc",
    "      maxAttempts: 0",
    "    - { name: ops, url: 'http://127.0.0.1:1/x', format: generic, secretEnv: 'not a name' }",
    "",
  ].join("\n");
  const all = errors(text);
  assert.match(
    all,
    /fleet\.yaml:5:12: notifications\.webhooks\[0\]\.url: expected an http:\/\/ or https:\/\/ URL, got "ftp:\/\/example\/x"/,
  );
  assert.match(
    all,
    /fleet\.yaml:6:15: notifications\.webhooks\[0\]\.format: expected one of "slack", "generic", got "teams"/,
  );
  assert.match(
    all,
    /fleet\.yaml:7:16: notifications\.webhooks\[0\]\.events\[0\]: expected one of "incident\.opened"/,
  );
  assert.match(all, /fleet\.yaml:8:7: notifications\.webhooks\[0\]\.secret: unknown key "secret"/);
  assert.match(
    all,
    /fleet\.yaml:9:20: notifications\.webhooks\[0\]\.maxAttempts: expected an integer from 1 to 20, got 0/,
  );
  assert.match(all, /notifications\.webhooks\[1\]\.secretEnv: expected an environment variable name/);
});

test("two webhooks with one name are refused at the second name", () => {
  const text = [
    "notifications:",
    "  webhooks:",
    "    - { name: ops, url: 'http://127.0.0.1:1/a', format: slack }",
    "    - { name: ops, url: 'http://127.0.0.1:1/b', format: generic }",
    "",
  ].join("\n");
  assert.match(
    errors(text),
    /fleet\.yaml:5:15: notifications\.webhooks\[1\]\.name: webhook name "ops" is used twice/,
  );
});
