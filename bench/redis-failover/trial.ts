/**
 * One trial: a fresh writer through the contender's way in, the role watcher on every data node,
 * the fault on the primary (kill -9, or SIGSTOP for `stopMs` then SIGCONT), the replicas' state
 * read right after the fault, the writes kept up until the window ends, then — once the store has
 * settled — every acknowledged key read back from the primary through the same way in.
 */

import { join } from "node:path";
import { Redis } from "ioredis";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { type QuietReading, waitQuiet } from "../proxy/quiet.ts";
import {
  analyzeTrial,
  type Fault,
  ISSUE_TARGETS,
  promotionAfter,
  type RoleChange,
  type TrialCheck,
  type TrialFigures,
  trialChecks,
  type WriteRecord,
} from "./analysis.ts";
import type { Contender } from "./contender.ts";
import type { RedisFailoverOptions } from "./options.ts";
import { boostAll } from "./priority.ts";
import { highestSeq, presentSeqs } from "./redisNodes.ts";
import { RoleWatch } from "./roleWatch.ts";
import { WriterProcess, type WriterRun } from "./writerProcess.ts";
import { type Access, clientOptions } from "./writerProtocol.ts";

function now(): number {
  return performance.timeOrigin + performance.now();
}

/** Let time pass while the writer writes: the measured stretch itself, not synchronisation. */
function during(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface TrialResult {
  contender: string;
  fault: Fault;
  round: number;
  ran: boolean;
  error: string | null;
  quiet: QuietReading | null;
  /** Processes given the bench's priority before the trial (null: not boosted). */
  boosted: number | null;
  keyPrefix: string;
  victimPort: number | null;
  faultAt: number | null;
  resumedAt: number | null;
  windowEndAt: number | null;
  replicasAtFault: { port: number; highestSeq: number | null }[] | null;
  roleChanges: RoleChange[];
  /** The store settled (one primary, replicas in sync) after the trial, and how long that took. */
  settledAfterWindowMs: number | null;
  writer: Omit<WriterRun, "records"> | null;
  /** Where every write's record was saved. */
  recordsFile: string | null;
  figures: TrialFigures | null;
  validity: TrialCheck[];
  targets: TrialCheck[];
  valid: boolean;
}

/** Which of the acknowledged writes are on the primary now, read through `access`. */
async function readBack(
  access: Access,
  prefix: string,
  seqs: readonly number[],
): Promise<{ port: number; present: Set<number> }> {
  const client = new Redis({
    ...clientOptions({ access, intervalMs: 0, keyPrefix: prefix, recordsFile: "", retryDelayMs: 100 }),
    connectionName: "hs-bench-readback",
    // A read-back is a plain question: no failover detection needed, and it must end.
    ...(access.kind === "sentinel" ? { failoverDetector: false } : {}),
    commandTimeout: 10_000,
  });
  client.on("error", () => undefined);
  try {
    const [role, port] = (await client.multi().role().config("GET", "port").exec()) ?? [];
    if ((role?.[1] as unknown[] | undefined)?.[0] !== "master")
      throw new Error("the read-back reached a replica");
    const present = await presentSeqs(client, prefix, seqs);
    return { port: Number((port?.[1] as string[] | undefined)?.[1]), present };
  } finally {
    client.disconnect();
  }
}

export async function runTrial(options: {
  contender: Contender;
  fault: Fault;
  round: number;
  runId: string;
  recordsDir: string;
  bench: RedisFailoverOptions;
  ledger: ProcessLedger;
  log: (message: string) => void;
}): Promise<TrialResult> {
  const { contender, fault, round, bench, ledger } = options;
  const keyPrefix = `hsb:${options.runId}:${contender.name}:${fault}:${round}:`;
  const result: TrialResult = {
    contender: contender.name,
    fault,
    round,
    ran: false,
    error: null,
    quiet: null,
    boosted: null,
    keyPrefix,
    victimPort: null,
    faultAt: null,
    resumedAt: null,
    windowEndAt: null,
    replicasAtFault: null,
    roleChanges: [],
    settledAfterWindowMs: null,
    writer: null,
    recordsFile: null,
    figures: null,
    validity: [],
    targets: [],
    valid: false,
  };
  let writer: WriterProcess | null = null;
  let watch: RoleWatch | null = null;
  let victimSignal: ((s: NodeJS.Signals) => boolean) | null = null;
  try {
    const primary = await contender.ready(90_000);
    result.quiet = await waitQuiet(bench.quietPercent, bench.quietTimeoutMs);
    // Members restarted since the last trial are new processes: they get the priority too.
    if (bench.nice !== null) result.boosted = boostAll(bench.nice);
    const ports = contender.dataPorts();
    const recordsFile = join(options.recordsDir, `${contender.name}-${fault}-${round}.json`);
    writer = await WriterProcess.start(
      {
        access: contender.access(),
        intervalMs: bench.intervalMs,
        keyPrefix,
        recordsFile,
        retryDelayMs: bench.retryDelayMs,
        failoverDetector: bench.failoverDetector,
      },
      ledger,
    );
    if (bench.nice !== null) boostAll(bench.nice); // the writer just started
    watch = new RoleWatch(ports);
    const startedAt = await writer.begin();
    await during(bench.beforeFaultMs);

    const victim = await contender.victim(primary);
    victimSignal = victim.signal;
    result.victimPort = primary;
    const faultAt = now();
    if (!victim.signal(fault === "kill" ? "SIGKILL" : "SIGSTOP"))
      throw new Error(`the primary on ${primary} was not running`);
    result.faultAt = faultAt;
    // The replicas' state at the fault: no promotion can happen within the detection budget.
    const upTo = Math.ceil((faultAt - startedAt) / bench.intervalMs) + 10;
    result.replicasAtFault = await Promise.all(
      ports
        .filter((p) => p !== primary)
        .map(async (port) => ({ port, highestSeq: await highestSeq(port, keyPrefix, upTo) })),
    );

    if (fault === "stop") {
      await during(Math.max(0, faultAt + bench.stopMs - now()));
      victim.signal("SIGCONT");
      result.resumedAt = now();
      victimSignal = null;
      await during(bench.afterResumeMs);
    } else {
      const windowEnd = faultAt + bench.afterKillMs;
      // The killed member comes back only after the failover (Sentinel: the bench restarts it).
      await waitFor(() => promotionAfter(watch!.changes, primary, faultAt) !== null || now() >= windowEnd, {
        timeoutMs: bench.afterKillMs + 1_000,
        intervalMs: 20,
        what: "a promotion or the end of the window",
      }).catch(() => undefined);
      await contender.afterKill(primary, windowEnd);
      await during(Math.max(0, windowEnd - now()));
    }
    result.windowEndAt = now();
    const run = await writer.end(bench.settleMs);
    writer = null;
    const { records, ...writerRest } = run;
    result.writer = writerRest;

    // Settled: the contender whole again (the old primary back as a replica), then read back.
    const settleStart = now();
    try {
      await contender.ready(60_000);
      result.settledAfterWindowMs = now() - settleStart;
    } catch (error) {
      options.log(`  the store did not settle: ${error instanceof Error ? error.message : String(error)}`);
    }
    result.roleChanges = await watch.stop();
    watch = null;
    if (fault === "kill") {
      const back = result.roleChanges.find(
        (c) => c.port === primary && c.from === "unreachable" && c.firstAt > faultAt,
      );
      result.resumedAt = back?.firstAt ?? null;
    }
    const acked = records.filter((w) => w.ackAt !== null).map((w) => w.seq);
    let final: { port: number; present: Set<number> } | null = null;
    try {
      final = await readBack(contender.access(), keyPrefix, acked);
    } catch (error) {
      options.log(`  read-back failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    // The writer saved every record there itself.
    result.recordsFile = recordsFile;

    result.figures = analyzeTrial(
      {
        fault,
        faultAt,
        resumedAt: result.resumedAt,
        windowEndAt: run.stoppedAt,
        victimPort: primary,
        writes: records as WriteRecord[],
        roleChanges: result.roleChanges,
        presentAtEnd: final?.present ?? null,
        finalPrimaryPort: final?.port ?? null,
        replicasAtFault: result.replicasAtFault,
      },
      bench.intervalMs,
    );
    const checks = trialChecks({
      fault,
      figures: result.figures,
      maxLatenessMs: bench.maxLatenessMs,
      targets: ISSUE_TARGETS,
    });
    result.validity = checks.validity;
    result.targets = checks.targets;
    result.valid = checks.validity.every((c) => c.ok === true);
    result.ran = true;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    // Never leave a primary stopped or a writer running behind a failed trial.
    victimSignal?.("SIGCONT");
    writer?.kill();
    await watch?.stop();
  }
  return result;
}
