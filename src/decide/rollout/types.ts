/**
 * Progressive deploys: the rollout's state, the analysis verdicts and what the controller must do
 * next. Pure data; `advanceRollout` in this folder moves the state machine.
 */

import type { BrakeRule } from "../brakes/types.ts";
import type { ProofEvidence } from "../rollback/types.ts";

/** Rolling windows of one release's traffic (see `TrafficStats.window`). `errorRate` null = no data. */
export interface WindowStats {
  requests: number;
  errors: number;
  errorRate: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  rps: number;
}

export type Verdict = "pass" | "fail" | "inconclusive";

export interface StepVerdict {
  /** Index into `deploy.steps`; -1 for the soak. */
  step: number;
  weight: number;
  verdict: Verdict;
  at: number;
  reasons: string[];
  canary: WindowStats;
  baseline: WindowStats | null;
}

export type RolloutPhase =
  | "starting" // new instances starting; no traffic yet
  | "stepping" // new release serving deploy.steps[stepIndex] % of traffic
  | "soaking" // new release serving 100 %, proving itself for deploy.soakMs
  | "proven" // done: the new release is known-good
  | "rolling-back" // traffic back on the previous release; new instances being stopped
  | "rolled-back"; // done: previous release serving, new one stopped

export interface RolloutState {
  id: number;
  service: string;
  from: string;
  to: string;
  /** Bank (0 or 1) of the instances of `from` and of `to`. */
  fromBank: 0 | 1;
  toBank: 0 | 1;
  phase: RolloutPhase;
  stepIndex: number;
  /** When the current phase or step began (epoch ms). */
  phaseStartedAt: number;
  startedAt: number;
  endedAt: number | null;
  verdicts: StepVerdict[];
  /** Why it ended or rolled back, in words. */
  reason: string | null;
  /** When the failing verdict was reached (for "verdict → 100 % stable" timing). */
  failedAt: number | null;
  evidence: ProofEvidence | null;
  /**
   * The previous release's bank is down: stopped at promotion (`keepStableWarm: false`), or found
   * without a ready instance when a rollback began. While true, a rollback keeps traffic where it
   * is and waits for that bank to be ready again (`desiredBanks` restarts it). Absent = false.
   */
  stableStopped?: boolean;
  /**
   * Set when the machine wanted to roll back but the rollback safety checks refused it (the
   * previous release cannot run in the world as it is now). Nothing moves until an operator
   * decides (`homeostat rollback --force --reason …`, or a new deploy).
   */
  held?: {
    at: number;
    /** Why the machine wanted to roll back. */
    cause: string;
    /** Why the rollback was refused (the blocking checks). */
    refusal: string;
    /** What the machine would have done, applied as is if an operator forces the rollback. */
    pending: { state: RolloutState; effects: RolloutEffect[] };
    /**
     * Set when an automation brake held the rollback (a pause, the rollbacks-per-hour limit)
     * rather than the safety checks: it goes ahead by itself once the brake lets it.
     */
    brake?: BrakeRule;
  };
}

/** What the controller must do as a result of a step of the machine. */
export type RolloutEffect =
  | { type: "set-weights"; weights: Record<string, number> }
  | { type: "stop-bank"; bank: 0 | 1; release: string }
  | {
      type: "mark-release";
      version: string;
      status: "active" | "proven" | "failed" | "rolled-back" | "superseded";
      evidence?: ProofEvidence;
    }
  | { type: "event"; event: string; reason: string; message: string };

export interface RolloutInputs {
  now: number;
  /** Ready instances of the new release, and how many it should have. */
  canaryReady: number;
  canaryWanted: number;
  /** Ready instances of the previous release (0 when it was stopped). */
  stableReady: number;
  /** Stats of `release` over the last `windowMs` (from the data plane). */
  stats: (release: string, windowMs: number) => WindowStats;
  /**
   * How far the stats lag behind `now`: the age of the data plane's last traffic report (0 when it
   * counts in this process). A soak is not ended on too little traffic while its last part has not
   * been reported yet. Absent: 0.
   */
  statsLagMs?: number;
}
