/**
 * Redis failover with real redis-server members, the store manager and the data plane's endpoint:
 * replica choice and no acknowledged write lost on kill -9, refusal on lag with the loss bound
 * stated, a returning (SIGSTOPped) primary fenced, the endpoint never pointing back at an old
 * primary, and a planned switchover that loses nothing. Every test stops what it started.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { exchange } from "../../src/stateful/redis/redisClient.ts";
import { directClient, missingOn, SeqWriter, startStore } from "../helpers/redisStoreHarness.ts";
import { waitFor } from "../helpers/waitFor.ts";

/** The sequence of endpoint targets never goes back to an earlier primary once an epoch moved on. */
function assertNeverBack(
  targets: { epoch: number; primary: string | null }[],
  old: string,
  fromEpoch: number,
): void {
  let epoch = 0;
  for (const t of targets) {
    assert.ok(t.epoch >= epoch, `epochs never go down: ${JSON.stringify(targets)}`);
    epoch = t.epoch;
    if (t.epoch >= fromEpoch)
      assert.notEqual(t.primary, old, `the endpoint pointed at ${old} again at epoch ${t.epoch}`);
  }
}

test("kill -9 of the primary: the most advanced replica is promoted at epoch 2, the old one returns as a replica, no acknowledged write lost", async () => {
  const h = await startStore();
  try {
    assert.equal(h.status().primary, "cache-0");
    assert.equal(h.status().epoch, 1);
    const writer = new SeqWriter(h.spec.port);
    await waitFor(() => writer.acked.length >= 100, { what: "writes acknowledged" });
    const killedAt = Date.now();
    process.kill(h.pidOf("cache-0"), "SIGKILL");
    await waitFor(() => h.status().epoch === 2 && h.status().endpoint.primary !== null, {
      what: "promotion",
    });
    const promoted = h.status().primary;
    assert.notEqual(promoted, "cache-0");
    const failover = h.events.find((e) => e.type === "redis.failover.started");
    assert.ok(failover);
    const reasons = (failover.data as { reasons: { code: string; ranking?: { member: string }[] }[] })
      .reasons;
    assert.deepEqual(
      reasons.map((r) => r.code),
      ["primary-unreachable", "replica-chosen"],
    );
    assert.equal(reasons[1]!.ranking![0]!.member, promoted, "the promoted member heads the ranking");
    // Writes succeed again through the endpoint.
    const acked = writer.acked.length;
    await waitFor(() => writer.acked.length > acked + 50, { what: "writes after the failover" });
    const writableAfterMs = (writer.ackedAt.get(writer.acked[acked]!) ?? 0) - killedAt;
    await waitFor(() => h.status().phase === "healthy", { what: "verified", timeoutMs: 20_000 });
    await writer.stop();
    const old = h.status().members.find((m) => m.name === "cache-0")!;
    assert.equal(old.role, "replica");
    assert.equal(old.follows, promoted);
    assert.deepEqual(await missingOn(h.portOf(promoted), writer.acked), [], "no acknowledged write lost");
    assertNeverBack(h.targets, "cache-0", 2);
    const incident = h.state.listIncidents({ service: "cache" })[0]!;
    assert.equal(incident.status, "closed");
    assert.ok(incident.mitigatedAt !== null && incident.verifiedAt !== null);
    assert.deepEqual(
      h.state.getIncident(incident.id)!.timeline.map((t) => t.phase),
      ["detected", "action", "mitigated", "verified"],
    );
    // Announced as other incidents are (webhooks and the stream follow these events).
    for (const type of ["incident.opened", "incident.verified"]) {
      assert.ok(
        h.events.some((e) => e.type === type && (e.data as { incident?: number }).incident === incident.id),
        type,
      );
    }
    const promotions = h.state.listJournal().filter((j) => j.action === "redis.promote");
    assert.equal((promotions[0]!.data as { epoch: number }).epoch, 2);
    const restarted = h.state.listJournal().find((j) => j.action === "redis.restart-replica");
    assert.equal((restarted?.data as { member: string } | undefined)?.member, "cache-0");
    assert.equal(restarted?.result?.ok, true);
    console.log(`writable again ${writableAfterMs} ms after kill -9 (writer every 2 ms)`);
  } finally {
    await h.close();
  }
});

test("refusal on lag: the best replica is further behind than maxLagOnFailover — no promotion, the loss bound stated, the primary restarted from its own data", async () => {
  // Six probes of 500 ms (3 s): the replicas, resumed with a backlog to chew through, answer probes
  // again before the failover is decided (else the refusal is "no eligible replica", also a refusal).
  const h = await startStore(
    "    minReplicasToWrite: 0\n    maxLagOnFailover: 1mb\n    detection: { interval: 500ms, timeout: 500ms, failures: 6 }\n",
  );
  try {
    const replicas = ["cache-1", "cache-2"].map((m) => h.pidOf(m));
    for (const pid of replicas) process.kill(pid, "SIGSTOP");
    // More than the kernel buffers toward the stopped replicas can hold.
    const big = "x".repeat(20 * 1024 * 1024);
    for (let i = 0; i < 3; i++) await exchange(h.portOf("cache-0"), [["SET", `big:${i}`, big]], 20_000);
    const [info] = await exchange(h.portOf("cache-0"), [["INFO", "replication"]], 2_000);
    const offset = Number(/master_repl_offset:(\d+)/.exec(String(info))![1]);
    await waitFor(() => (h.status().members.find((m) => m.name === "cache-0")!.offset ?? 0) >= offset, {
      what: "the primary's offset observed",
    });
    process.kill(h.pidOf("cache-0"), "SIGKILL");
    for (const pid of replicas) process.kill(pid, "SIGCONT");
    const refused = await waitFor(() => h.events.find((e) => e.type === "redis.failover.refused"), {
      what: "refusal",
    });
    const data = refused.data as {
      loss: { knownBytes: number; statement: string };
      reasons: { code: string }[];
    };
    assert.ok(
      data.reasons.some((r) => r.code === "lag-exceeds-bound"),
      JSON.stringify(data.reasons),
    );
    assert.ok(data.loss.knownBytes > 1024 * 1024, `lag ${data.loss.knownBytes}`);
    assert.match(refused.message, /would lose \d+ bytes/);
    assert.equal(h.status().epoch, 1, "nothing promoted");
    const incident = h.state.listIncidents({ service: "cache" })[0]!;
    assert.match(incident.detail, /bytes of replication stream/);
    // Restarted in place from its AOF: it is primary again, nothing was promoted, the incident closes.
    await waitFor(() => h.status().phase === "healthy", { what: "primary back", timeoutMs: 60_000 });
    assert.equal(h.status().primary, "cache-0");
    assert.equal(h.status().epoch, 1);
    assert.equal(
      h.targets.some((t) => t.primary !== "cache-0"),
      false,
      "the endpoint never left cache-0",
    );
  } finally {
    await h.close();
  }
});

test("a SIGSTOPped primary that returns is demoted before the endpoint could reach it, its direct clients closed; it acknowledges no write after the failover", async () => {
  const h = await startStore();
  let direct: Awaited<ReturnType<typeof directClient>> | null = null;
  try {
    const writer = new SeqWriter(h.spec.port);
    await waitFor(() => writer.acked.length >= 100, { what: "writes acknowledged" });
    // A client connected straight to the primary (not through Homeostat): Redis would keep it
    // connected across REPLICAOF; the demotion closes it, so it can rediscover the primary.
    direct = await directClient(h.portOf("cache-0"));
    const oldPid = h.pidOf("cache-0");
    process.kill(oldPid, "SIGSTOP");
    await waitFor(() => h.status().epoch === 2 && h.status().endpoint.primary !== null, {
      what: "promotion",
    });
    const promoted = h.status().primary;
    const acked = writer.acked.length;
    await waitFor(() => writer.acked.length > acked + 50, { what: "writes after the failover" });
    process.kill(oldPid, "SIGCONT");
    await waitFor(() => h.status().members.find((m) => m.name === "cache-0")?.role === "replica", {
      what: "old primary demoted",
    });
    const closed = direct.closed;
    await waitFor(() => closed(), { what: "the direct client closed by the demotion" });
    await waitFor(() => h.status().phase === "healthy", { what: "verified", timeoutMs: 20_000 });
    await writer.stop();
    assert.equal(h.status().members.find((m) => m.name === "cache-0")!.follows, promoted);
    assertNeverBack(h.targets, "cache-0", 2);
    assert.deepEqual(await missingOn(h.portOf(promoted), writer.acked), [], "no acknowledged write lost");
    // Every acknowledged write is on the new primary, so none went to the old one alone.
    const [role] = await exchange(h.portOf("cache-0"), [["ROLE"]], 2_000);
    assert.equal((role as string[])[0], "slave");
    // Demoted by the REPLICAOF queued at the failover (run first when it resumed), or by the
    // probes' stale-primary demotion: either way journaled.
    const demotions = h.state
      .listJournal()
      .filter((j) => j.action === "redis.demote" && (j.data as { member: string }).member === "cache-0");
    assert.ok(demotions.length > 0, "the demotion is journaled");
  } finally {
    direct?.socket.destroy();
    await h.close();
  }
});

test("planned switchover: writes paused, the replica caught up, swapped — no acknowledged write lost, epoch +1", async () => {
  const h = await startStore();
  try {
    const writer = new SeqWriter(h.spec.port);
    await waitFor(() => writer.acked.length >= 200, { what: "writes acknowledged" });
    const result = await h.stores.switchover("cache", { to: "cache-2", reason: "test" });
    assert.equal(result.to, "cache-2");
    assert.equal(result.epoch, 2);
    const acked = writer.acked.length;
    await waitFor(() => writer.acked.length > acked + 100, { what: "writes after the switchover" });
    await waitFor(() => h.status().phase === "healthy", { what: "verified", timeoutMs: 20_000 });
    await writer.stop();
    assert.deepEqual(await missingOn(h.portOf("cache-2"), writer.acked), [], "no acknowledged write lost");
    const old = h.status().members.find((m) => m.name === "cache-0")!;
    assert.equal(old.role, "replica");
    assert.equal(old.follows, "cache-2");
    assertNeverBack(h.targets, "cache-0", 2);
    await assert.rejects(h.stores.switchover("cache", { to: "nope" }), /no member "nope"/);
    console.log(`switchover: caught up in ${result.caughtUpMs} ms, writes paused ${result.pausedMs} ms`);
  } finally {
    await h.close();
  }
});

test("fencing by min-replicas-to-write: a primary cut off from its replicas stops acknowledging writes (bound: minReplicasMaxLag + 2 s: whole-second lag, once-a-second refresh)", async () => {
  const h = await startStore();
  const replicas = ["cache-1", "cache-2"].map((m) => h.pidOf(m));
  try {
    const primary = h.portOf("cache-0");
    assert.deepEqual(await exchange(primary, [["SET", "before", "1"]], 2_000), ["OK"]);
    const cutAt = Date.now();
    for (const pid of replicas) process.kill(pid, "SIGSTOP");
    let lastAck = cutAt;
    const refused = await waitFor(
      async () => {
        const [reply] = await exchange(primary, [["SET", "after", String(Date.now())]], 1_000);
        if (reply === "OK") {
          lastAck = Date.now();
          return null;
        }
        return reply;
      },
      { what: "the primary refusing writes", timeoutMs: 10_000, intervalMs: 10 },
    );
    assert.match(JSON.stringify(refused), /NOREPLICAS/);
    const windowMs = lastAck - cutAt;
    assert.ok(windowMs <= 3_000, `acknowledged writes for ${windowMs} ms after its replicas were cut off`);
    // Alive but not writable is not a failover: nothing to promote would be better off.
    assert.equal(h.status().epoch, 1);
    console.log(`primary cut off from its replicas: last write acknowledged ${windowMs} ms after the cut`);
  } finally {
    for (const pid of replicas) {
      try {
        process.kill(pid, "SIGCONT");
      } catch {}
    }
    await h.close();
  }
});
