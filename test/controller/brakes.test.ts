/**
 * The brakes wired to a real store (SQLite): one event per hold however often it is asked, a
 * release event when it goes ahead, the instances acted on until ready again, the pause read from
 * the store (another controller's pause holds this one), manual actions over a pause.
 */

import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { AutomationBrakes } from "../../src/controller/brakes.ts";
import type { AutomatedProposal } from "../../src/decide/brakes/types.ts";
import type { Reason } from "../../src/decide/reasons.ts";
import type { ObservedInstance } from "../../src/decide/snapshot.ts";
import { HomeostatError } from "../../src/errors.ts";
import { StateStore } from "../../src/store/index.ts";
import { makeFleet } from "../helpers/fleetFixture.ts";
import { tempStateDir } from "../store/tempStateDir.ts";

const T0 = 1_800_000_000_000;

function setup(t: TestContext, dir = tempStateDir(t)) {
  const store = StateStore.open(dir);
  t.after(() => store.close());
  let now = T0;
  const notes: { type: string; why: Reason; data: Record<string, unknown> }[] = [];
  const escalated: string[] = [];
  let instances: ObservedInstance[] = [];
  const fleet = makeFleet({ services: [{ name: "api", replicas: 3 }] });
  const brakes = new AutomationBrakes({
    store: store.brakes,
    fleet: () => fleet,
    note: (type, why, data) => notes.push({ type, why, data }),
    escalate: (proposal) => escalated.push(proposal.target),
    instances: () => instances,
    now: () => now,
  });
  return {
    brakes,
    store,
    dir,
    notes,
    escalated,
    at: (ms: number) => {
      now = T0 + ms;
    },
    observe: (list: ObservedInstance[]) => {
      instances = list;
    },
  };
}

const restart = (instance: string, live: boolean): AutomatedProposal => ({
  kind: "restart",
  service: "api",
  target: instance,
  disrupts: live ? [{ instance, service: "api" }] : [],
});

function observed(name: string, ready: boolean, since: number): ObservedInstance {
  return {
    name,
    service: "api",
    slot: Number(name.slice(-1)),
    release: "v1",
    runtime: "running",
    health: { state: ready ? "ready" : "unhealthy", since, lastGoodAt: null, reason: "" },
    startedAt: since,
    lastExit: null,
  };
}

describe("AutomationBrakes", () => {
  it("records one event and one escalation per hold, however often it is asked, and a release once it goes", (t) => {
    const b = setup(t);
    b.brakes.pause("alice", "drill");
    for (let i = 0; i < 5; i++) {
      b.at(i * 250);
      assert.equal(b.brakes.automated(restart("api-0", false)).allowed, false);
    }
    assert.deepEqual(
      b.notes.map((n) => n.type),
      ["automation.paused", "automation.held"],
    );
    assert.deepEqual(b.escalated, ["api-0"]);
    assert.equal(b.brakes.status().held.length, 1);
    b.brakes.resume("bob", "done");
    b.at(1_500);
    assert.equal(b.brakes.automated(restart("api-0", false)).allowed, true);
    assert.deepEqual(
      b.notes.map((n) => [n.type, n.why.code]),
      [
        ["automation.paused", "automation-paused"],
        ["automation.held", "automation-paused"],
        ["automation.resumed", "automation-resumed"],
        ["automation.released", "brake-released"],
      ],
    );
    assert.deepEqual(b.brakes.status().held, []);
    assert.equal(b.brakes.status().usage.services[0]?.restarts.used, 1, "the allowed restart is counted");
  });

  it("drops a hold nobody asks for any more (the instance came back by itself)", (t) => {
    const b = setup(t);
    b.brakes.pause("alice", "drill");
    b.brakes.automated(restart("api-1", false));
    b.at(10_000);
    assert.deepEqual(b.brakes.status().held, []);
  });

  it("counts an instance whose live process it stopped until its slot is ready again", (t) => {
    const b = setup(t);
    b.observe([observed("api-0", false, T0 - 5), observed("api-1", false, T0 - 5)]);
    assert.equal(b.brakes.automated(restart("api-0", true)).allowed, true);
    b.at(100);
    const held = b.brakes.automated(restart("api-1", true));
    assert.equal(held.allowed ? "allowed" : held.hold.rule, "blast-radius-service");
    // api-0's replacement is ready (after the stop): api-1 may go.
    b.observe([observed("api-0", true, T0 + 2_000), observed("api-1", false, T0 - 5)]);
    b.at(2_500);
    assert.equal(b.brakes.automated(restart("api-1", true)).allowed, true);
  });

  it("reads the pause from the store: a pause made by another controller holds this one", (t) => {
    const b = setup(t);
    const other = setup(t, b.dir);
    other.brakes.pause("carol", "from the other controller");
    assert.equal(b.brakes.paused()?.by, "carol");
    const verdict = b.brakes.automated(restart("api-2", false));
    assert.equal(verdict.allowed ? "allowed" : verdict.hold.rule, "paused");
  });

  it("refuses a second pause, a pause without a reason, and a resume when not paused, saying why", (t) => {
    const b = setup(t);
    assert.throws(
      () => b.brakes.resume("bob", ""),
      (e) => e instanceof HomeostatError && e.code === "HS_CONFLICT" && /not paused/.test(e.message),
    );
    assert.throws(
      () => b.brakes.pause("alice", " "),
      (e) => e instanceof HomeostatError && e.code === "HS_BAD_REQUEST" && /needs a reason/.test(e.message),
    );
    b.brakes.pause("alice", "first");
    assert.throws(
      () => b.brakes.pause("bob", "second"),
      (e) =>
        e instanceof HomeostatError &&
        e.code === "HS_CONFLICT" &&
        /already paused by alice .*\(first\)/.test(e.message),
    );
  });

  it("lets a person act over a pause only with override and a reason, and records who overrode what", (t) => {
    const b = setup(t);
    b.brakes.assertManual({ what: "deploy of api v2", override: false, reason: "", who: "bob" });
    b.brakes.pause("alice", "freeze");
    assert.throws(
      () => b.brakes.assertManual({ what: "deploy of api v2", override: false, reason: "", who: "bob" }),
      (e) => e instanceof HomeostatError && e.code === "HS_PAUSED",
    );
    assert.throws(
      () => b.brakes.assertManual({ what: "deploy of api v2", override: true, reason: "", who: "bob" }),
      (e) => e instanceof HomeostatError && e.code === "HS_BAD_REQUEST",
    );
    b.brakes.assertManual({ what: "deploy of api v2", override: true, reason: "hotfix", who: "bob" });
    const last = b.notes.at(-1)!;
    assert.equal(last.type, "automation.overridden");
    assert.match(
      last.why.message,
      /bob overrode the pause \(by alice: freeze\) for the deploy of api v2: hotfix/,
    );
  });
});
