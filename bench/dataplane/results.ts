/**
 * The data-plane bench's result file: every trial of both scenarios, the configs as written, and
 * the targets' verdicts.
 */

import type { LoadSummary } from "../common/loadgen/summary.ts";
import type { MachineInfo } from "../foundation/machine.ts";
import type { CodeState } from "../proxy/codeState.ts";
import type { QuietReading } from "../proxy/quiet.ts";
import type { ToolVersions } from "../proxy/tools.ts";
import { hungVerdict, type RunFigures, type TargetVerdict, type Window } from "./analysis.ts";
import type { DataPlaneFault, DataPlaneMode, DataPlaneOptions, HungContender } from "./options.ts";
import type { GeneratorCheck } from "./trial.ts";

/** What every trial records, whatever its scenario. */
export interface TrialCommon {
  /** 0-based. */
  repeat: number;
  ok: boolean;
  error?: string;
  before: QuietReading | null;
  /** The fault, ms from the generator's t0 (the measured stretch starts `warmupMs` after t0). */
  fault: Window | null;
  figures: RunFigures | null;
  warmup: LoadSummary["warmup"] | null;
  /** Whether the generator kept its schedule (null: the load did not run). */
  generator: GeneratorCheck | null;
}

export interface HungTrial extends TrialCommon {
  contender: HungContender;
  victim: string;
  /** False: the hung process was gone when its SIGCONT was due (Homeostat's controller replaced it). */
  victimContinued: boolean | null;
  verdict: TargetVerdict | null;
}

export interface KillTrial extends TrialCommon {
  mode: DataPlaneMode;
  /** False: the code had no `--data-plane` flag, and `up` ran with its own default. */
  flagPassed: boolean;
  controllerPid: number | null;
  /** Pids listening on the service port just before the kill, and after the load. */
  listenersBefore: number[];
  listenersAfter: number[];
}

export interface DataPlaneFaultTrial extends TrialCommon {
  kind: DataPlaneFault;
  /** The data-plane process before the fault, and the one serving after the load. */
  pidBefore: number | null;
  pidAfter: number | null;
  /** SIGKILL: ms from the kill until a fresh connection to the port got a 200 again. */
  servingAgainMs: number | null;
}

export interface DataPlaneResult {
  benchmark: "dataplane";
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  dateUtc: string;
  machine: MachineInfo & { loadAverage1mAtEnd: number };
  code: CodeState;
  tools: Pick<ToolVersions, "haproxy" | "nginx">;
  options: DataPlaneOptions;
  /** Whether `homeostat up --help` showed `--data-plane`. */
  dataPlaneFlag: boolean;
  /** As written: Homeostat's fleet file (hung scenario), nginx.conf, haproxy.cfg. */
  configs: { homeostatFleet: string | null; nginx: string | null; haproxy: string | null };
  hung: HungTrial[];
  controllerKill: KillTrial[];
  dataPlaneFaults: DataPlaneFaultTrial[];
  /** What was left out, and why. */
  skipped: string[];
  targets: {
    /** Homeostat in the hung scenario, every trial (null: not run). */
    hung: TargetVerdict | null;
    /** Zero failed requests in every controller-kill trial with the separate process (null: not run). */
    controllerKillZeroFailed: boolean | null;
    /** Zero failed requests in every planned data-plane restart (null: not run). */
    plannedRestartZeroFailed: boolean | null;
  };
  leftoverPids: number[];
}

/** A trial that ran, and whose generator kept its schedule: evidence for or against a target. */
export function counts(t: TrialCommon): boolean {
  return t.ok && t.figures !== null && t.generator?.valid !== false;
}

/** Trials that ran but whose generator fell behind: left out of every target, counted here. */
export function invalidGenerator(trials: readonly TrialCommon[]): number {
  return trials.filter((t) => t.ok && t.generator?.valid === false).length;
}

/**
 * A target is met only when every trial that ran met it; a trial that could not run (its set-up
 * failed), or whose generator fell behind its schedule, is no evidence either way and is left out
 * (the run then exits 1, and the report lists it). No trial ran: null.
 */
export function everyTrial(trials: readonly HungTrial[]): TargetVerdict | null {
  const verdicts = trials.flatMap((t) => (counts(t) ? [hungVerdict(t.figures!)] : []));
  if (verdicts.length === 0) return null;
  return {
    servedPercent: verdicts.every((v) => v.servedPercent),
    p99: verdicts.every((v) => v.p99),
    zeroFailed: verdicts.every((v) => v.zeroFailed),
    all: verdicts.every((v) => v.all),
  };
}

/** Zero failed requests in every trial that ran (null: none ran). */
export function zeroFailedEveryTrial(trials: readonly (KillTrial | DataPlaneFaultTrial)[]): boolean | null {
  const ran = trials.filter(counts);
  if (ran.length === 0) return null;
  return ran.every((t) => t.figures!.failed === 0);
}
