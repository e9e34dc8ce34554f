/**
 * The Redis failover bench's reading of a trial (bench/redis-failover/analysis.ts): from the
 * writer's records, the nodes' role changes and the keys found at the end, the time until writes
 * succeed again, the acknowledged writes lost, the writes the old primary acknowledged after the
 * failover — and the cases where a figure must count as a miss.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  analyzeTrial,
  type CellSummary,
  ISSUE_TARGETS,
  type RoleChange,
  type SummaryTrial,
  summarizeCell,
  TARGET_KILL_LOST,
  TARGET_STOP_OLD,
  TARGET_WRITABLE,
  type TrialRecords,
  trialChecks,
  type WriteRecord,
  writableMedian,
} from "../../bench/redis-failover/analysis.ts";

const OLD = 7000;
const NEW = 7001;
const OTHER = 7002;
const T0 = 1_000_000; // epoch ms of the first write
const FAULT = T0 + 5_000;
const END = T0 + 10_000;
const INTERVAL = 2;

/** How one write went, by its due time (ms after T0). */
type Outcome =
  | { ack: number; port: number; at?: number }
  | { error: number; message?: string }
  | { pending: true };

/**
 * Writes every 2 ms from T0 to END, each sent on time; `outcome(dueMs)` says what happened to it
 * (times in ms after T0). The default: acknowledged 0.5 ms later by OLD before the fault.
 */
function writes(outcome: (dueMs: number) => Outcome, end = END): WriteRecord[] {
  const out: WriteRecord[] = [];
  for (let seq = 0; T0 + seq * INTERVAL <= end; seq++) {
    const dueMs = seq * INTERVAL;
    const o = outcome(dueMs);
    const record: WriteRecord = {
      seq,
      dueAt: T0 + dueMs,
      sentAt: T0 + dueMs,
      ackAt: null,
      errorAt: null,
      error: null,
      serverPort: null,
      serverTimeMs: null,
    };
    if ("ack" in o) {
      record.ackAt = T0 + o.ack;
      record.serverPort = o.port;
      record.serverTimeMs = T0 + (o.at ?? o.ack - 0.2);
    } else if ("error" in o) {
      record.errorAt = T0 + o.error;
      record.error = o.message ?? "Connection is closed.";
    }
    out.push(record);
  }
  return out;
}

/** NEW seen as a replica until `lastMs`, as master from `firstMs` (after T0); OLD unreachable at the fault. */
function promotion(lastMs: number, firstMs: number): RoleChange[] {
  return [
    { port: OLD, from: null, to: "master", lastBeforeAt: null, firstAt: T0 },
    { port: NEW, from: null, to: "slave", lastBeforeAt: null, firstAt: T0 },
    { port: OTHER, from: null, to: "slave", lastBeforeAt: null, firstAt: T0 },
    { port: OLD, from: "master", to: "unreachable", lastBeforeAt: FAULT - 3, firstAt: FAULT + 2 },
    { port: NEW, from: "slave", to: "master", lastBeforeAt: T0 + lastMs, firstAt: T0 + firstMs },
  ];
}

function acked(w: readonly WriteRecord[]): Set<number> {
  return new Set(w.filter((x) => x.ackAt !== null).map((x) => x.seq));
}

function trial(partial: Partial<TrialRecords> & { writes: WriteRecord[] }): TrialRecords {
  return {
    fault: "kill",
    faultAt: FAULT,
    resumedAt: null,
    windowEndAt: END,
    victimPort: OLD,
    roleChanges: promotion(6_000, 6_005),
    presentAtEnd: acked(partial.writes),
    finalPrimaryPort: NEW,
    replicasAtFault: [
      { port: NEW, highestSeq: 2_500 },
      { port: OTHER, highestSeq: 2_500 },
    ],
    ...partial,
  };
}

/** kill -9 at 5 s: writes fail until `recoverMs`, then NEW acknowledges them. */
function killOutcome(recoverMs: number): (dueMs: number) => Outcome {
  return (dueMs) => {
    if (dueMs < 5_000) return { ack: dueMs + 0.5, port: OLD };
    if (dueMs < recoverMs) return { error: dueMs + 30 };
    return { ack: dueMs + 0.5, port: NEW };
  };
}

describe("analyzeTrial", () => {
  it("kill -9 with a caught-up replica: writable again at the first ack after the last failure, nothing lost", () => {
    const w = writes(killOutcome(6_100));
    const f = analyzeTrial(trial({ writes: w }), INTERVAL);
    // The last failure is the write due at 6,098 ms, failing at 6,128; the first ack after it is
    // the write due at 6,128 (acknowledged at 6,128.5): 1,128.5 ms after the fault.
    assert.equal(f.lastFailureMs, 1_128);
    assert.equal(f.writableAgainMs, 1_128.5);
    assert.equal(f.promotedPort, NEW);
    assert.equal(f.promotedAfterMs, 1_000);
    assert.equal(f.promotedSeenMs, 1_005);
    assert.equal(f.failed, 550);
    assert.equal(f.ackedLost, 0);
    assert.equal(f.bestReplicaMissing, 0);
    assert.equal(f.ackedByOldAfterFailover, 0);
    // Acks stop at 4,998.5 ms; NEW's first is at 6,100.5 ms (among the last failures).
    assert.equal(f.longestAckGapMs, 1_102);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.ok(checks.validity.every((c) => c.ok === true));
    assert.deepEqual(
      checks.targets.map((c) => [c.name, c.ok]),
      [
        [TARGET_WRITABLE, true],
        [TARGET_KILL_LOST, true],
      ],
    );
  });

  it("writable again past 1,200 ms is a miss", () => {
    const f = analyzeTrial(trial({ writes: writes(killOutcome(6_300)) }), INTERVAL);
    assert.ok(f.writableAgainMs! > 1_200);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.targets.find((c) => c.name === TARGET_WRITABLE)?.ok, false);
  });

  it("never writable again: null, a miss, and 'never' in the median", () => {
    const w = writes((dueMs) => (dueMs < 5_000 ? { ack: dueMs + 0.5, port: OLD } : { error: dueMs + 30 }));
    const f = analyzeTrial(trial({ writes: w, roleChanges: promotion(9_000, 9_005) }), INTERVAL);
    assert.equal(f.writableAgainMs, null);
    assert.equal(f.longestAckGapMs, null);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.targets.find((c) => c.name === TARGET_WRITABLE)?.ok, false);
    assert.equal(writableMedian([500, null, null]), Number.POSITIVE_INFINITY);
    assert.equal(writableMedian([500, 900, null]), 900);
  });

  it("a failure after writes came back moves the recovery to after it", () => {
    const base = killOutcome(6_000);
    const w = writes((dueMs) => (dueMs === 7_000 ? { error: 7_010 } : base(dueMs)));
    const f = analyzeTrial(trial({ writes: w }), INTERVAL);
    assert.equal(f.lastFailureMs, 2_010);
    assert.equal(f.writableAgainMs, 2_010.5);
  });

  it("writes queued through the outage (none failed): recovery is the first ack of a write sent after the fault", () => {
    // Every write from 4,990 ms on waits and is acknowledged by NEW at 6,195 ms; a reply already
    // in flight from before the fault arrives 1 ms after it and must not count as recovery.
    const w = writes((dueMs) => {
      if (dueMs < 4_990) return { ack: dueMs + 0.5, port: OLD };
      if (dueMs === 4_998) return { ack: 5_001, port: OLD };
      if (dueMs < 6_200) return { ack: 6_195, port: NEW };
      return { ack: dueMs + 0.5, port: NEW };
    });
    const f = analyzeTrial(trial({ writes: w }), INTERVAL);
    assert.equal(f.failed, 0);
    assert.equal(f.writableAgainMs, 1_195);
    assert.equal(f.longestAckGapMs, 1_194);
  });

  it("an acknowledged write missing at the end is lost; with a caught-up replica that is a miss", () => {
    const w = writes(killOutcome(6_000));
    const present = acked(w);
    present.delete(2_499); // acknowledged at 4,998.5 ms, 1.5 ms before the kill
    const f = analyzeTrial(trial({ writes: w, presentAtEnd: present }), INTERVAL);
    assert.equal(f.ackedLost, 1);
    assert.equal(f.ackedLostBeforeFault, 1);
    assert.deepEqual(f.ackedLostSeqs, [2_499]);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.targets.find((c) => c.name === TARGET_KILL_LOST)?.ok, false);
  });

  it("no replica had caught up at the kill: the loss target does not apply (neither met nor missed)", () => {
    const w = writes(killOutcome(6_000));
    const present = acked(w);
    present.delete(2_499);
    const f = analyzeTrial(
      trial({
        writes: w,
        presentAtEnd: present,
        replicasAtFault: [
          { port: NEW, highestSeq: 2_498 },
          { port: OTHER, highestSeq: 2_497 },
        ],
      }),
      INTERVAL,
    );
    assert.equal(f.bestReplicaMissing, 1);
    assert.equal(f.promotedReplicaMissing, 1);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.targets.find((c) => c.name === TARGET_KILL_LOST)?.ok, null);
  });

  it("the worse replica promoted while a caught-up one existed shows in promotedReplicaMissing", () => {
    const f = analyzeTrial(
      trial({
        writes: writes(killOutcome(6_000)),
        replicasAtFault: [
          { port: NEW, highestSeq: 2_490 },
          { port: OTHER, highestSeq: 2_500 },
        ],
      }),
      INTERVAL,
    );
    assert.equal(f.bestReplicaMissing, 0);
    assert.equal(f.promotedReplicaMissing, 9);
  });

  it("the end state not read: lost is unknown, the trial invalid and the loss target missed", () => {
    const f = analyzeTrial(trial({ writes: writes(killOutcome(6_000)), presentAtEnd: null }), INTERVAL);
    assert.equal(f.ackedLost, null);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.validity.find((c) => c.name === "final data read")?.ok, false);
    assert.equal(checks.targets.find((c) => c.name === TARGET_KILL_LOST)?.ok, false);
  });

  describe("SIGSTOP for 10 s", () => {
    const STOP = { fault: "stop" as const, resumedAt: FAULT + 10_000, windowEndAt: T0 + 18_000 };
    const stopRoles = (): RoleChange[] => [
      ...promotion(6_000, 6_005),
      { port: OLD, from: "unreachable", to: "master", lastBeforeAt: T0 + 14_999, firstAt: T0 + 15_001 },
      { port: OLD, from: "master", to: "slave", lastBeforeAt: T0 + 15_300, firstAt: T0 + 15_305 },
    ];

    it("the old primary acknowledging queued writes at SIGCONT: each one counts, and a miss", () => {
      // Writes due 5,000–5,020 ms were stuck on the stopped primary; at SIGCONT (15 s) it executes
      // and acknowledges them. Everything else fails until NEW takes writes at 6,100 ms.
      const w = writes((dueMs) => {
        if (dueMs < 5_000) return { ack: dueMs + 0.5, port: OLD };
        if (dueMs < 5_020) return { ack: 15_000.5, port: OLD, at: 15_000.2 };
        if (dueMs < 6_100) return { error: dueMs + 30 };
        return { ack: dueMs + 0.5, port: NEW };
      }, T0 + 18_000);
      const present = acked(w.filter((x) => x.serverPort !== OLD || x.ackAt! < FAULT));
      const f = analyzeTrial(
        trial({ ...STOP, writes: w, roleChanges: stopRoles(), presentAtEnd: present }),
        INTERVAL,
      );
      assert.equal(f.ackedByOldAfterFault, 10);
      assert.equal(f.ackedByOldAfterFailover, 10);
      assert.equal(f.ackedByOldAfterFailoverAmbiguous, 0);
      assert.equal(f.ackedLost, 10);
      // The old primary's acks at 15 s are failures in disguise: writes succeed again only after
      // them (with one connection, as the writer has, nothing can succeed elsewhere meanwhile).
      assert.equal(f.lastFailureMs, 10_000.5);
      assert.equal(f.writableAgainMs, 10_002.5);
      assert.equal(f.oldPrimarySeenAsMasterAfterResumeMs, 1);
      assert.equal(f.oldPrimaryFencedAfterResumeMs, 305);
      const checks = trialChecks({ fault: "stop", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
      assert.equal(checks.targets.find((c) => c.name === TARGET_STOP_OLD)?.ok, false);
      assert.equal(checks.targets.find((c) => c.name === TARGET_WRITABLE)?.ok, false);
    });

    it("fenced: the old primary's queued writes fail, nothing acknowledged by it; met", () => {
      const w = writes((dueMs) => {
        if (dueMs < 5_000) return { ack: dueMs + 0.5, port: OLD };
        if (dueMs < 6_050) return { error: 6_040 };
        return { ack: dueMs + 0.5, port: NEW };
      });
      const f = analyzeTrial(trial({ ...STOP, writes: w, roleChanges: stopRoles() }), INTERVAL);
      assert.equal(f.ackedByOldAfterFailover, 0);
      assert.equal(f.writableAgainMs, 1_050.5);
      const checks = trialChecks({ fault: "stop", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
      assert.deepEqual(
        checks.targets.map((c) => c.ok),
        [true, true],
      );
    });

    it("an old-primary ack in the role watcher's blind spot counts against the contender, marked ambiguous", () => {
      // NEW last seen a replica at 6,000 ms, first seen master at 6,005: OLD executes a write at 6,002.
      const w = writes((dueMs) => {
        if (dueMs < 5_000) return { ack: dueMs + 0.5, port: OLD };
        if (dueMs === 5_000) return { ack: 6_002.5, port: OLD, at: 6_002 };
        if (dueMs < 6_100) return { error: 6_090 };
        return { ack: dueMs + 0.5, port: NEW };
      });
      const f = analyzeTrial(trial({ ...STOP, writes: w, roleChanges: stopRoles() }), INTERVAL);
      assert.equal(f.ackedByOldAfterFailover, 1);
      assert.equal(f.ackedByOldAfterFailoverAmbiguous, 1);
    });

    it("no failover at all: the old primary's acks after SIGCONT are not split-brain, but the target is missed", () => {
      const w = writes((dueMs) =>
        dueMs < 5_000 ? { ack: dueMs + 0.5, port: OLD } : { ack: Math.max(15_000.5, dueMs + 0.5), port: OLD },
      );
      const roles: RoleChange[] = [
        { port: OLD, from: null, to: "master", lastBeforeAt: null, firstAt: T0 },
        { port: NEW, from: null, to: "slave", lastBeforeAt: null, firstAt: T0 },
      ];
      const f = analyzeTrial(trial({ ...STOP, writes: w, roleChanges: roles }), INTERVAL);
      assert.equal(f.promotedPort, null);
      assert.equal(f.ackedByOldAfterFailover, 0);
      assert.equal(f.writableAgainMs, 10_000.5);
      const checks = trialChecks({ fault: "stop", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
      assert.equal(checks.targets.find((c) => c.name === TARGET_STOP_OLD)?.ok, false);
    });
  });

  it("a writer that fell behind its schedule makes the trial invalid", () => {
    const w = writes(killOutcome(6_000)).map((x) => (x.seq % 50 === 0 ? { ...x, sentAt: x.dueAt + 40 } : x));
    const f = analyzeTrial(trial({ writes: w }), INTERVAL);
    assert.ok(f.lateness.p99BeforeFault >= 40);
    const checks = trialChecks({ fault: "kill", figures: f, maxLatenessMs: 20, targets: ISSUE_TARGETS });
    assert.equal(checks.validity.find((c) => c.name === "generator on time")?.ok, false);
  });
});

describe("summarizeCell", () => {
  const base = analyzeTrial(trial({ writes: writes(killOutcome(6_000)) }), INTERVAL);
  const figures = (writableAgainMs: number | null, ackedLost: number) => ({
    ...base,
    writableAgainMs,
    ackedLost,
  });
  const entry = (
    round: number,
    writable: number | null,
    lost: number,
    lossOk: boolean | null,
  ): SummaryTrial => ({
    contender: "homeostat-endpoint",
    fault: "kill",
    round,
    valid: true,
    figures: figures(writable, lost),
    targets: [
      { name: TARGET_WRITABLE, ok: writable !== null && writable <= 1_200, detail: "" },
      { name: TARGET_KILL_LOST, ok: lossOk, detail: "" },
    ],
  });
  const verdict = (cell: CellSummary, name: string) => cell.targets.find((t) => t.name === name)?.verdict;

  it("met on the median over ≥ 3 valid trials, every applicable trial for the loss target", () => {
    const cell = summarizeCell("homeostat-endpoint", "kill", [
      entry(0, 900, 0, true),
      entry(1, 1_500, 0, true),
      entry(2, 1_100, 0, true),
    ]);
    assert.equal(cell.writableAgainMs.median, 1_100);
    assert.equal(verdict(cell, TARGET_WRITABLE), "met");
    assert.equal(verdict(cell, TARGET_KILL_LOST), "met");
  });

  it("a never-recovered trial drags the median to a miss; one lost write misses the loss target", () => {
    const cell = summarizeCell("homeostat-endpoint", "kill", [
      entry(0, 900, 0, true),
      entry(1, null, 1, false),
      entry(2, null, 0, true),
    ]);
    assert.equal(verdict(cell, TARGET_WRITABLE), "missed");
    assert.equal(verdict(cell, TARGET_KILL_LOST), "missed");
  });

  it("fewer than 3 valid (or applicable) trials: not shown", () => {
    const invalid = { ...entry(2, 500, 0, true), valid: false };
    const cell = summarizeCell("homeostat-endpoint", "kill", [
      entry(0, 900, 0, true),
      entry(1, 800, 0, null),
      invalid,
    ]);
    assert.equal(cell.valid, 2);
    assert.equal(verdict(cell, TARGET_WRITABLE), "not shown");
    const three = summarizeCell("homeostat-endpoint", "kill", [
      entry(0, 900, 0, true),
      entry(1, 800, 0, null),
      entry(2, 700, 0, true),
    ]);
    assert.equal(verdict(three, TARGET_WRITABLE), "met");
    assert.equal(verdict(three, TARGET_KILL_LOST), "not shown");
    assert.match(three.targets.find((t) => t.name === TARGET_KILL_LOST)!.detail, /1 not applicable/);
  });
});
