/**
 * Releases end to end: a progressive deploy of a faulty release rolls back on its own under load,
 * a good one becomes proven, and rollbacks that cannot undo the world are refused with an
 * alternative — through the real CLI, controller, data plane and instances.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  BAD_ERROR_RATE,
  canaryFleetUnderLoad,
  expectBadCanaryRolledBack,
  type VersionLoad,
} from "../helpers/canaryFleet.ts";
import { demoRelease, type Sandbox, sandbox } from "../helpers/e2e.ts";
import { apiCli } from "../helpers/fleetControl.ts";
import { waitFor } from "../helpers/waitFor.ts";

interface Rollout {
  id: number;
  kind: string;
  finished: boolean;
  state: { phase: string; from: string; to: string; reason: string | null; failedAt: number | null };
}
interface Releases {
  active: string;
  history: { version: string; status: string; evidence: unknown }[];
  rollouts: Rollout[];
}

const SCHEMA_5 = ['requires: { schemas: { orders-db: ">=5 <6" } }', 'provides: { api: "1.0.0" }'];

/** v1 and v2-bad on orders-db schema 5; v3 migrates it to 6, v5 (faulty) to 7; v4 needs 9. */
const RELEASES = [
  demoRelease("v1", {}, SCHEMA_5),
  demoRelease("v2-bad", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) }, SCHEMA_5),
  demoRelease("v3-migrates", {}, [
    'requires: { schemas: { orders-db: ">=6" } }',
    'provides: { api: "1.1.0" }',
    "migrations: [{ datastore: orders-db, from: 5, to: 6, reversible: false }]",
  ]),
  demoRelease("v4-future", {}, ['requires: { schemas: { orders-db: ">=9" } }']),
  demoRelease("v5-bad-migrates", { FAULT_ERROR_RATE: String(BAD_ERROR_RATE) }, [
    'requires: { schemas: { orders-db: ">=7" } }',
    "migrations: [{ datastore: orders-db, from: 6, to: 7, reversible: false }]",
  ]),
];

describe("releases, deploys and rollbacks", () => {
  let box: Sandbox;
  let port: number;
  let load: VersionLoad;
  const api = (path: string) => `/v1/services/api${path}`;
  const cli = (...args: string[]) => apiCli(box, ...args);
  const releases = async () => await box.get<Releases>(api("/releases"));

  before(async () => {
    box = await sandbox();
    ({ port, load } = await canaryFleetUnderLoad(box, {
      name: "releases-e2e",
      datastores: ["  orders-db: { initialVersion: 5 }"],
      releases: RELEASES,
      serving: "the proxy serving v1",
    }));
  });
  after(async () => {
    await load?.stop();
    await box.cleanup();
  });

  test("a deploy that cannot run in today's world is refused up front, with the reason", async () => {
    const result = await cli("deploy", "api", "v4-future");
    assert.equal(result.code, 1);
    assert.match(result.stderr, /needs orders-db schema >=9, which is at 5/);
    assert.equal((await releases()).rollouts.length, 0, "nothing started");
  });

  test("a faulty release rolls back on its own; errors served stay within the canary's share", async (t) => {
    await expectBadCanaryRolledBack(box, load, t);
  });

  test("a good release goes 10 → 50 → 100 %, soaks, and becomes proven with evidence", async () => {
    const deploy = await cli("deploy", "api", "v3-migrates");
    assert.equal(deploy.code, 0, deploy.stderr);
    const rollout = await waitFor(
      async () => (await releases()).rollouts.find((r) => r.state.to === "v3-migrates" && r.finished),
      { timeoutMs: 60_000, what: "the v3 deploy to finish" },
    );
    assert.equal(rollout.state.phase, "proven", rollout.state.reason ?? "");
    const history = await releases();
    assert.equal(history.active, "v3-migrates");
    const entry = history.history.find((h) => h.version === "v3-migrates");
    assert.equal(entry?.status, "proven");
    assert.ok(entry?.evidence, "evidence stored");
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        const body = (await r.json()) as { version: string };
        return body.version === "v3-migrates";
      },
      { what: "v3 serving" },
    );
  });

  test("plan rollback --json: refused after an irreversible migration, with every check and an alternative", async () => {
    const result = await cli("plan", "rollback", "api", "--to", "v1", "--json");
    assert.equal(result.code, 0, result.stderr);
    const plan = JSON.parse(result.stdout) as {
      decision: string;
      checks: { name: string; ok: boolean; detail: string; severity: string }[];
      alternative?: { kind: string; version: string; description: string };
    };
    assert.equal(plan.decision, "refuse");
    assert.deepEqual(plan.checks.map((c) => c.name).sort(), [
      "compatibility",
      "drift",
      "evidence",
      "migrations",
      "security",
    ]);
    for (const check of plan.checks) {
      assert.equal(typeof check.ok, "boolean");
      assert.equal(typeof check.detail, "string");
    }
    const migrations = plan.checks.find((c) => c.name === "migrations")!;
    assert.equal(migrations.ok, false);
    assert.equal(migrations.severity, "blocking");
    assert.match(migrations.detail, /irreversible|orders-db/);
    assert.ok(plan.alternative, "a refusal proposes an alternative");

    const refused = await cli("rollback", "api", "--to", "v1");
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /HS_ROLLBACK_REFUSED/);
    const noReason = await cli("rollback", "api", "--to", "v1", "--force");
    assert.equal(noReason.code, 1);
    assert.match(noReason.stderr, /--force needs --reason/);
    assert.equal((await releases()).active, "v3-migrates", "nothing changed");
  });

  test("a forced rollback is carried out and audited", async () => {
    const forced = await cli(
      "rollback",
      "api",
      "--to",
      "v1",
      "--force",
      "--reason",
      "drill: v1 tolerates schema 6",
    );
    assert.equal(forced.code, 0, forced.stderr);
    await waitFor(async () => (await releases()).active === "v1", {
      timeoutMs: 30_000,
      what: "v1 active again",
    });
    const { events } = await box.get<{ events: { type: string; message: string }[] }>(
      "/v1/events?limit=2000",
    );
    const started = events.find((e) => e.type === "rollback.started");
    assert.match(started?.message ?? "", /FORCED .*drill: v1 tolerates schema 6/);
    await waitFor(
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/`);
        const body = (await r.json()) as { version: string };
        return body.version === "v1";
      },
      { what: "v1 serving again" },
    );
  });

  test("an automatic rollback the safety checks refuse is held for an operator, not carried out blindly", async () => {
    // v1 runs (forced) on schema 6; v5 migrates to 7 irreversibly and then fails its canary:
    // going back to v1 (which needs < 6) would make things worse.
    const deploy = await cli("deploy", "api", "v5-bad-migrates");
    assert.equal(deploy.code, 0, deploy.stderr);
    const refusedEvent = await waitFor(
      async () => {
        const { events } = await box.get<{ events: { type: string; message: string }[] }>(
          "/v1/events?limit=3000",
        );
        return events.find((e) => e.type === "deploy.rollback-refused");
      },
      { timeoutMs: 45_000, what: "the automatic rollback to be refused" },
    );
    assert.match(refusedEvent.message, /migrations|compatibility/);
    const held = (await releases()).rollouts.find((r) => r.state.to === "v5-bad-migrates");
    assert.equal(held?.finished, false, "the deploy waits for a decision");
    assert.equal((await releases()).active, "v1");

    const plan = JSON.parse((await cli("plan", "rollback", "api", "--json")).stdout) as {
      decision: string;
      to: string;
    };
    assert.equal(plan.decision, "refuse");
    assert.equal(plan.to, "v1");

    const forced = await cli("rollback", "api", "--force", "--reason", "drill: accept v1 on schema 7");
    assert.equal(forced.code, 0, forced.stderr);
    const done = await waitFor(
      async () => (await releases()).rollouts.find((r) => r.state.to === "v5-bad-migrates" && r.finished),
      { timeoutMs: 30_000, what: "the held deploy to finish" },
    );
    assert.equal(done.state.phase, "rolled-back");
    assert.equal((await releases()).active, "v1");
  });
});
