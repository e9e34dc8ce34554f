/**
 * The Redis failover bench's reading of a trial: pure functions from what was recorded (every
 * write the client made, the roles the nodes reported, the keys found on the final primary) to
 * the figures of issue 16 — time until writes succeed again, acknowledged writes lost, writes
 * acknowledged by the old primary after the failover — and the verdicts against its targets.
 *
 * Times are epoch milliseconds with a fractional part (`performance.timeOrigin +
 * performance.now()` in each process, so the bench, the writer and the redis-servers' own `TIME`
 * share one clock on this machine).
 */

/** One write of the writer: `MULTI; SET key seq; CONFIG GET port; TIME; EXEC` as one round trip. */
export interface WriteRecord {
  seq: number;
  /** When the open-loop schedule wanted it sent. */
  dueAt: number;
  /** When it was handed to the client library (lateness = sentAt − dueAt). */
  sentAt: number;
  /** When the EXEC reply arrived with the SET's OK, or null. */
  ackAt: number | null;
  /** When it failed (an error reply, EXECABORT, a closed connection, a retry limit), or null. */
  errorAt: number | null;
  error: string | null;
  /**
   * The port of the redis-server that executed the write: `CONFIG GET port` inside the same
   * transaction, so it names the node that applied this very SET, whatever proxy sits between.
   */
  serverPort: number | null;
  /** The executing server's clock (`TIME` in the same transaction), epoch ms. */
  serverTimeMs: number | null;
}

/** One role a node was seen in by the role watcher (`ROLE` every few ms on its own connection). */
export type NodeRole = "master" | "slave" | "unreachable";

/** A node seen in a new role: between `lastBeforeAt` (old role seen) and `firstAt` (new role seen). */
export interface RoleChange {
  port: number;
  from: NodeRole | null;
  to: NodeRole;
  /** The last observation of the old role (null: the first observation of the node). */
  lastBeforeAt: number | null;
  firstAt: number;
}

export type Fault = "kill" | "stop";

/** Everything one trial recorded, as the analysis reads it. */
export interface TrialRecords {
  fault: Fault;
  /** When the signal (SIGKILL or SIGSTOP) was sent to the primary. */
  faultAt: number;
  /** SIGCONT (stop) or the restart of the killed process by the bench (Sentinel), or null. */
  resumedAt: number | null;
  /** When the writer stopped making writes. */
  windowEndAt: number;
  /** The primary's port when the fault was injected. */
  victimPort: number;
  writes: readonly WriteRecord[];
  roleChanges: readonly RoleChange[];
  /**
   * Sequence numbers whose key, with its value, is on the primary at the end (read through the
   * same way in as the writer after the topology settled), or null when it could not be read.
   */
  presentAtEnd: ReadonlySet<number> | null;
  /** The port that answered the final read (the primary at the end), or null. */
  finalPrimaryPort: number | null;
  /**
   * Each replica's highest sequence number, read right after the fault (before any promotion can
   * happen: that takes at least the detection budget). Replication applies the writes in order,
   * so a replica holds every write up to it. Null: not read.
   */
  replicasAtFault: readonly { port: number; highestSeq: number | null }[] | null;
}

/** The figures of one trial. */
export interface TrialFigures {
  writes: number;
  acked: number;
  /** Writes that got an error. */
  failed: number;
  /** Writes with neither an ack nor an error when the writer gave up waiting. */
  unresolved: number;
  /** Errors before the fault (nothing should fail then). */
  failedBeforeFault: number;
  /** The node other than the victim that became master after the fault, and when. */
  promotedPort: number | null;
  /** ms from the fault to the last observation of the new primary as a replica (lower bound). */
  promotedAfterMs: number | null;
  /** ms from the fault to the first observation of it as master (upper bound). */
  promotedSeenMs: number | null;
  /**
   * ms from the fault to the first write sent after the fault, acknowledged after the last failed
   * write and not by the old primary after the failover: when writes succeed again. Null: never.
   */
  writableAgainMs: number | null;
  /** The longest stretch without a kept acknowledgement from 1 s before the fault to recovery. */
  longestAckGapMs: number | null;
  /** ms from the fault to the last failed write (null: none failed). */
  lastFailureMs: number | null;
  /** Acknowledged writes whose key is not on the primary at the end (null: not read). */
  ackedLost: number | null;
  /** The first few of them. */
  ackedLostSeqs: number[];
  /** Of those, acknowledged before the fault (asynchronous replication behind). */
  ackedLostBeforeFault: number | null;
  /**
   * Writes acknowledged before the fault missing from the most caught-up replica right after it
   * (0: a caught-up replica existed, so nothing had to be lost). Null: not read.
   */
  bestReplicaMissing: number | null;
  /** The same for the replica that was promoted (did the failover pick the right one?). */
  promotedReplicaMissing: number | null;
  /** Writes acknowledged by the victim whose execution time is after the fault. */
  ackedByOldAfterFault: number;
  /**
   * Writes acknowledged by the old primary, executed after the new primary was promoted (its last
   * sighting as a replica, so a write in the watcher's blind spot counts against the contender).
   */
  ackedByOldAfterFailover: number;
  /** Of those, executed before the first sighting of the new primary as master (the blind spot). */
  ackedByOldAfterFailoverAmbiguous: number;
  /** ms from SIGCONT/restart until the old primary was first seen as a replica (null: never seen). */
  oldPrimaryFencedAfterResumeMs: number | null;
  /** ms from SIGCONT/restart until the old primary was first seen as master again (null: never). */
  oldPrimarySeenAsMasterAfterResumeMs: number | null;
  /** The final read's node is not the one promoted (or no promotion). */
  finalPrimaryPort: number | null;
  /**
   * Lateness of the writer's sends (sentAt − dueAt), ms: over the whole run, and over the writes
   * due before the fault (the steady state: after a recovery the client's burst of queued
   * replies keeps the writer's own event loop busy, which says nothing of the machine).
   */
  lateness: { p50: number; p99: number; max: number; p99BeforeFault: number };
  /** Writes made ÷ writes the schedule asked for over the writer's run. */
  achievedShare: number;
}

/** Nearest-rank percentile of unsorted values (0 for none). */
export function percentileOf(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

/** When the victim's write was executed: the server's clock if it said, else the ack. */
function executedAt(w: WriteRecord): number {
  return w.serverTimeMs ?? w.ackAt ?? Number.POSITIVE_INFINITY;
}

/** The promotion of a node other than the victim to master after the fault, if any. */
export function promotionAfter(
  changes: readonly RoleChange[],
  victimPort: number,
  faultAt: number,
): RoleChange | null {
  const promoted = changes
    .filter((c) => c.port !== victimPort && c.to === "master" && c.from !== null && c.firstAt > faultAt)
    .sort((a, b) => a.firstAt - b.firstAt);
  return promoted[0] ?? null;
}

/** Analyze one trial's records. */
export function analyzeTrial(r: TrialRecords, intervalMs: number): TrialFigures {
  const { faultAt, victimPort, writes } = r;
  const promotion = promotionAfter(r.roleChanges, victimPort, faultAt);
  // Without a sighting of the old role, the promotion is taken to have happened at the fault.
  const promotedLowerAt = promotion === null ? null : (promotion.lastBeforeAt ?? faultAt);
  const acked = writes.filter((w) => w.ackAt !== null);
  const byOld = acked.filter((w) => w.serverPort === victimPort && executedAt(w) > faultAt);
  const splitBrain = promotedLowerAt === null ? [] : byOld.filter((w) => executedAt(w) >= promotedLowerAt);
  const splitBrainSeqs = new Set(splitBrain.map((w) => w.seq));
  const ambiguous =
    promotion === null ? 0 : splitBrain.filter((w) => executedAt(w) < promotion.firstAt).length;

  const failed = writes.filter((w) => w.errorAt !== null);
  // A write acknowledged by the old primary after the failover is a failure in disguise: the
  // failover discards it. It counts as a failure at its ack for the recovery time.
  const failureTimes = [
    ...failed.filter((w) => w.errorAt! >= faultAt).map((w) => w.errorAt!),
    ...splitBrain.map((w) => w.ackAt!),
  ];
  const lastFailureAt = failureTimes.length === 0 ? null : Math.max(...failureTimes);
  const kept = acked.filter((w) => !splitBrainSeqs.has(w.seq)).sort((a, b) => a.ackAt! - b.ackAt!);
  const recovery = kept.find(
    (w) => w.sentAt > faultAt && w.ackAt! > faultAt && (lastFailureAt === null || w.ackAt! > lastFailureAt),
  );
  const recoveredAt = recovery?.ackAt ?? null;

  let longestGap: number | null = null;
  if (recoveredAt !== null) {
    const from = faultAt - 1_000;
    const times = kept.map((w) => w.ackAt!).filter((t) => t >= from && t <= recoveredAt);
    let previous = from;
    longestGap = 0;
    for (const t of times) {
      longestGap = Math.max(longestGap, t - previous);
      previous = t;
    }
  }

  let ackedLost: number | null = null;
  let ackedLostBeforeFault: number | null = null;
  const lostSeqs: number[] = [];
  if (r.presentAtEnd !== null) {
    const present = r.presentAtEnd;
    const lost = acked.filter((w) => !present.has(w.seq));
    ackedLost = lost.length;
    ackedLostBeforeFault = lost.filter((w) => w.ackAt! <= faultAt).length;
    lostSeqs.push(...lost.slice(0, 20).map((w) => w.seq));
  }

  const ackedBeforeFault = acked.filter((w) => w.ackAt! <= faultAt).map((w) => w.seq);
  const missingFrom = (highestSeq: number | null) =>
    ackedBeforeFault.filter((seq) => highestSeq === null || seq > highestSeq).length;
  const replicas = r.replicasAtFault;
  const bestReplicaMissing =
    replicas === null || replicas.length === 0
      ? null
      : Math.min(...replicas.map((x) => missingFrom(x.highestSeq)));
  const promotedAtFault = replicas?.find((x) => x.port === promotion?.port);
  const promotedReplicaMissing =
    promotedAtFault === undefined ? null : missingFrom(promotedAtFault.highestSeq);

  let fenced: number | null = null;
  let masterAgain: number | null = null;
  if (r.resumedAt !== null) {
    const resumedAt = r.resumedAt;
    const victimChanges = r.roleChanges.filter((c) => c.port === victimPort && c.firstAt >= resumedAt);
    const toSlave = victimChanges.find((c) => c.to === "slave");
    const toMaster = victimChanges.find((c) => c.to === "master");
    fenced = toSlave === undefined ? null : toSlave.firstAt - resumedAt;
    masterAgain = toMaster === undefined ? null : toMaster.firstAt - resumedAt;
  }

  const lateness = writes.map((w) => w.sentAt - w.dueAt);
  const latenessBefore = writes.filter((w) => w.dueAt < faultAt).map((w) => w.sentAt - w.dueAt);
  const first = writes[0];
  const scheduled = first === undefined ? 0 : Math.floor((r.windowEndAt - first.dueAt) / intervalMs) + 1;
  return {
    writes: writes.length,
    acked: acked.length,
    failed: failed.length,
    unresolved: writes.filter((w) => w.ackAt === null && w.errorAt === null).length,
    failedBeforeFault: failed.filter((w) => w.errorAt! < faultAt).length,
    promotedPort: promotion?.port ?? null,
    promotedAfterMs: promotedLowerAt === null ? null : promotedLowerAt - faultAt,
    promotedSeenMs: promotion === null ? null : promotion.firstAt - faultAt,
    writableAgainMs: recoveredAt === null ? null : recoveredAt - faultAt,
    longestAckGapMs: longestGap,
    lastFailureMs: lastFailureAt === null ? null : lastFailureAt - faultAt,
    ackedLost,
    ackedLostSeqs: lostSeqs,
    ackedLostBeforeFault,
    bestReplicaMissing,
    promotedReplicaMissing,
    ackedByOldAfterFault: byOld.length,
    ackedByOldAfterFailover: splitBrain.length,
    ackedByOldAfterFailoverAmbiguous: ambiguous,
    oldPrimaryFencedAfterResumeMs: fenced,
    oldPrimarySeenAsMasterAfterResumeMs: masterAgain,
    finalPrimaryPort: r.finalPrimaryPort,
    lateness: {
      p50: percentileOf(lateness, 50),
      p99: percentileOf(lateness, 99),
      max: lateness.length === 0 ? 0 : Math.max(...lateness),
      p99BeforeFault: percentileOf(latenessBefore, 99),
    },
    achievedShare: scheduled <= 0 ? 0 : writes.length / scheduled,
  };
}

/** The issue's targets. */
export interface Targets {
  /** Writable again within this after the fault (ms), with a 1 s detection budget. */
  writableAgainMs: number;
}

export const ISSUE_TARGETS: Targets = { writableAgainMs: 1_200 };

/** A check on one trial: passed, failed or (a target only) not applicable, and what was seen. */
export interface TrialCheck {
  name: string;
  ok: boolean | null;
  detail: string;
}

/** What a trial must show for its figures to count, and the issue's targets on it. */
export interface TrialCheckInput {
  fault: Fault;
  figures: TrialFigures;
  /** The writer's bound on its own p99 lateness (ms). */
  maxLatenessMs: number;
  targets: Targets;
}

export const TARGET_WRITABLE = "writable again";
export const TARGET_KILL_LOST = "0 acknowledged writes lost on kill -9 with a caught-up replica";
export const TARGET_STOP_OLD = "0 writes acknowledged by the old primary after the failover (SIGSTOP)";

/**
 * The bench's own checks (is the trial valid: the generator kept its pace, nothing failed before
 * the fault, the end state was read) and the targets on it (writable again in time, nothing
 * acknowledged lost on kill -9 when a caught-up replica existed, nothing acknowledged by the old
 * primary after the failover on SIGSTOP). A target is never "met" on a figure that is missing; the
 * loss target is "not applicable" (null) when no replica had caught up at the kill.
 */
export function trialChecks(input: TrialCheckInput): { validity: TrialCheck[]; targets: TrialCheck[] } {
  const f = input.figures;
  const validity: TrialCheck[] = [
    {
      name: "generator on time",
      ok: f.lateness.p99BeforeFault <= input.maxLatenessMs && f.achievedShare >= 0.98,
      detail: `p99 lateness before the fault ${f.lateness.p99BeforeFault.toFixed(1)} ms (bound ${input.maxLatenessMs}; ${f.lateness.p99.toFixed(1)} ms over the whole run), ${(f.achievedShare * 100).toFixed(1)} % of the schedule written`,
    },
    {
      name: "nothing failed before the fault",
      ok: f.failedBeforeFault === 0,
      detail: `${f.failedBeforeFault} failed before the fault`,
    },
    {
      name: "final data read",
      ok: f.ackedLost !== null,
      detail:
        f.ackedLost === null
          ? "could not read the primary at the end"
          : `read from port ${f.finalPrimaryPort}`,
    },
  ];
  const targets: TrialCheck[] = [
    {
      name: TARGET_WRITABLE,
      ok: f.writableAgainMs !== null && f.writableAgainMs <= input.targets.writableAgainMs,
      detail: f.writableAgainMs === null ? "never" : `${Math.round(f.writableAgainMs)} ms`,
    },
  ];
  if (input.fault === "kill") {
    const caughtUp = f.bestReplicaMissing === 0;
    targets.push({
      name: TARGET_KILL_LOST,
      ok: f.ackedLost === null ? false : caughtUp ? f.ackedLost === 0 : null,
      detail: `${f.ackedLost ?? "?"} lost; the most caught-up replica missed ${f.bestReplicaMissing ?? "?"} acknowledged writes at the kill${caughtUp ? "" : " (none caught up: not applicable)"}`,
    });
  } else {
    targets.push({
      name: TARGET_STOP_OLD,
      ok: f.promotedPort !== null && f.ackedByOldAfterFailover === 0,
      detail:
        f.promotedPort === null
          ? "no failover seen"
          : `${f.ackedByOldAfterFailover} (${f.ackedByOldAfterFailoverAmbiguous} in the role watcher's blind spot); ${f.ackedLost ?? "?"} acknowledged writes lost`,
    });
  }
  return { validity, targets };
}

/** Every check passed (targets left out). */
export function allOk(checks: readonly TrialCheck[]): boolean {
  return checks.every((c) => c.ok === true);
}

/** Median (nearest rank, the lower of two middles) of the non-null values, or null. */
export function medianOf(values: readonly (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  if (present.length === 0) return null;
  return percentileOf(present, 50);
}

/** A trial as the summary reads it. */
export interface SummaryTrial {
  contender: string;
  fault: Fault;
  round: number;
  /** Ran to the end and passed the validity checks. */
  valid: boolean;
  figures: TrialFigures | null;
  targets: TrialCheck[];
}

export interface Column {
  median: number | null;
  runs: (number | null)[];
}

/** A target's verdict over a cell's valid trials. */
export interface TargetVerdict {
  name: string;
  verdict: "met" | "missed" | "not shown";
  /** How the verdict was reached, with the numbers. */
  detail: string;
}

/** One contender under one fault, over its trials. */
export interface CellSummary {
  contender: string;
  fault: Fault;
  trials: number;
  valid: number;
  writableAgainMs: Column;
  longestAckGapMs: Column;
  failed: Column;
  ackedLost: Column;
  ackedByOldAfterFailover: Column;
  oldPrimaryFencedAfterResumeMs: Column;
  targets: TargetVerdict[];
}

/** Minimum valid trials for a verdict. */
export const MIN_VALID_TRIALS = 3;

/**
 * The median time to writable again, a trial that never recovered counting as infinitely slow
 * (dropping it would flatter the contender).
 */
export function writableMedian(runs: readonly (number | null)[]): number | null {
  if (runs.length === 0) return null;
  return percentileOf(
    runs.map((v) => v ?? Number.POSITIVE_INFINITY),
    50,
  );
}

export function summarizeCell(
  contender: string,
  fault: Fault,
  all: readonly SummaryTrial[],
  targets: Targets = ISSUE_TARGETS,
): CellSummary {
  const trials = all.filter((t) => t.contender === contender && t.fault === fault);
  const valid = trials.filter((t) => t.valid && t.figures !== null);
  const col = (pick: (f: TrialFigures) => number | null): Column => {
    const runs = valid.map((t) => pick(t.figures!));
    return { median: medianOf(runs), runs };
  };
  const writable = col((f) => f.writableAgainMs);
  writable.median = writableMedian(writable.runs);
  const verdicts: TargetVerdict[] = [];
  if (valid.length < MIN_VALID_TRIALS) {
    verdicts.push({
      name: TARGET_WRITABLE,
      verdict: "not shown",
      detail: `${valid.length} valid trials (${MIN_VALID_TRIALS} needed)`,
    });
  } else {
    const m = writable.median!;
    const within = writable.runs.filter((v) => v !== null && v <= targets.writableAgainMs).length;
    verdicts.push({
      name: TARGET_WRITABLE,
      verdict: m <= targets.writableAgainMs ? "met" : "missed",
      detail: `median ${Number.isFinite(m) ? `${Math.round(m)} ms` : "never"} (target ≤ ${targets.writableAgainMs} ms); ${within} of ${valid.length} trials within`,
    });
  }
  const name = fault === "kill" ? TARGET_KILL_LOST : TARGET_STOP_OLD;
  const checks = valid.map((t) => t.targets.find((c) => c.name === name)?.ok ?? null);
  const applicable = checks.filter((ok) => ok !== null);
  const passed = applicable.filter((ok) => ok === true).length;
  const notApplicable = checks.length - applicable.length;
  const tail = notApplicable > 0 ? `; ${notApplicable} not applicable (no caught-up replica)` : "";
  verdicts.push({
    name,
    verdict:
      applicable.length > passed ? "missed" : applicable.length >= MIN_VALID_TRIALS ? "met" : "not shown",
    detail: `${passed} of ${applicable.length} applicable trials${tail}`,
  });
  return {
    contender,
    fault,
    trials: trials.length,
    valid: valid.length,
    writableAgainMs: writable,
    longestAckGapMs: col((f) => f.longestAckGapMs),
    failed: col((f) => f.failed),
    ackedLost: col((f) => f.ackedLost),
    ackedByOldAfterFailover: col((f) => f.ackedByOldAfterFailover),
    oldPrimaryFencedAfterResumeMs: col((f) => f.oldPrimaryFencedAfterResumeMs),
    targets: verdicts,
  };
}
