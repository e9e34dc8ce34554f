/**
 * The pause of automation (`homeostat pause`, docs/brakes.md) holds a store's automated failover
 * and member restarts as it holds the controller's: each hold is one `automation.held` event with
 * the pause's reason, the store's incident escalates, the store says `held`; nothing is promoted
 * or started while paused, and on resume the failover and the restarts go ahead and are verified.
 * Real redis-server members; the pause is a plain value here (the brakes' store is tested apart).
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import type { PauseState } from "../../src/decide/brakes/types.ts";
import { startStore } from "../helpers/redisStoreHarness.ts";
import { waitFor } from "../helpers/waitFor.ts";

test("paused: the failover of a killed primary and the restart of a killed replica are held with the pause's reason, the incident escalates; resumed, both go ahead and the store is verified", async () => {
  let pause: PauseState | null = null;
  const h = await startStore("", { paused: () => pause });
  try {
    pause = { by: "alice", reason: "db migration 4411", since: Date.now() };
    process.kill(h.pidOf("cache-2"), "SIGKILL");
    process.kill(h.pidOf("cache-0"), "SIGKILL");
    const held = await waitFor(
      () => {
        const holds = h.events.filter((e) => e.type === "automation.held");
        return holds.length >= 2 ? holds : null;
      },
      { what: "the failover and the restart held" },
    );
    assert.deepEqual(
      held.map((e) => [(e.data as { kind: string }).kind, (e.data as { target: string }).target]).sort(),
      [
        ["failover", "cache"],
        ["restart", "cache-2"],
      ],
    );
    for (const e of held) {
      assert.equal(e.reason, "automation-paused");
      assert.equal((e.data as { rule: string }).rule, "paused");
      assert.match(
        e.message,
        /held: automation is paused by alice since .* \(db migration 4411\); `homeostat resume` lets it act/,
      );
    }
    assert.equal(h.status().phase, "held");
    assert.deepEqual(
      h
        .status()
        .held.map((x) => x.kind)
        .sort(),
      ["failover", "restart"],
    );
    const incident = h.state.listIncidents({ service: "cache" })[0]!;
    assert.equal(incident.status, "open");
    assert.ok(
      h.state
        .getIncident(incident.id)!
        .timeline.some((t) => t.phase === "escalated" && /db migration 4411/.test(t.detail)),
      "the incident escalated with the pause's reason",
    );

    // Held for as long as the pause lasts: four detection budgets (3 × 250 ms each) of passes
    // promote nothing, start nothing, and announce the holds once.
    const watchUntil = performance.now() + 3_000;
    while (performance.now() < watchUntil) {
      const s = h.status();
      assert.equal(s.epoch, 1, "nothing promoted while paused");
      assert.equal(s.primary, "cache-0");
      assert.ok(
        s.members.every((m) => m.name === "cache-1" || m.process === "exited"),
        "nothing started while paused",
      );
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(h.events.filter((e) => e.type === "automation.held").length, 2, "each hold announced once");

    pause = null;
    await waitFor(() => h.status().phase === "healthy" && h.status().epoch === 2, {
      what: "failover after the resume, verified",
      timeoutMs: 20_000,
    });
    assert.equal(h.status().primary, "cache-1", "the only replica left alive");
    assert.deepEqual(
      h.events
        .filter((e) => e.type === "automation.released")
        .map((e) => (e.data as { kind: string }).kind)
        .sort(),
      ["failover", "restart"],
    );
    assert.deepEqual(h.status().held, []);
    for (const m of ["cache-0", "cache-2"]) {
      const member = h.status().members.find((x) => x.name === m)!;
      assert.equal(member.role, "replica", `${m} restarted as a replica`);
      assert.equal(member.follows, "cache-1");
    }
    assert.deepEqual(
      h.state.getIncident(incident.id)!.timeline.map((t) => t.phase),
      ["detected", "escalated", "action", "mitigated", "verified"],
    );
  } finally {
    await h.close();
  }
});
