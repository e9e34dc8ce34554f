/**
 * The same faults against the naive supervisor. It has no probes and no notion of "ready", so
 * the bench checks readiness itself by polling `GET /ready` on the slot's port.
 */

import { processState } from "../../src/lib/procStat.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { answersReady } from "./httpCheck.ts";
import type { Mutex } from "./mutex.ts";
import type { NaiveFleet } from "./naiveFleet.ts";
import { signalIfRunning, stillRunning } from "./processes.ts";

const TRIAL_TIMEOUT_MS = 30_000;

/** A uniformly random permutation (Fisher–Yates). */
function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let k = out.length - 1; k > 0; k--) {
    const j = Math.floor(Math.random() * (k + 1));
    [out[k], out[j]] = [out[j]!, out[k]!];
  }
  return out;
}

export interface NaiveKillTrial {
  trial: number;
  slot: number;
  oldPid: number;
  newPid: number | null;
  ok: boolean;
  error?: string;
  injectedAt: number;
  /** The supervisor saw the exit (its own clock). */
  exitSeenAt: number | null;
  /** The supervisor spawned the replacement. */
  respawnedAt: number | null;
  /** Bench: a new process answers `GET /ready` with 200. */
  readyAt: number | null;
  /** readyAt − injectedAt. */
  faultToReadyMs: number | null;
}

/** SIGKILL a random naive instance and time until a new process answers `/ready`. */
export async function naiveKillTrial(fleet: NaiveFleet, trial: number): Promise<NaiveKillTrial> {
  await fleet.waitAllReady(TRIAL_TIMEOUT_MS);
  const slot = Math.floor(Math.random() * fleet.ports.length);
  const victim = fleet.instance(slot)!;
  const injectedAt = Date.now();
  process.kill(victim.process.pid, "SIGKILL");
  const result: NaiveKillTrial = {
    trial,
    slot,
    oldPid: victim.process.pid,
    newPid: null,
    ok: false,
    injectedAt,
    exitSeenAt: null,
    respawnedAt: null,
    readyAt: null,
    faultToReadyMs: null,
  };
  try {
    result.readyAt = await waitFor(
      async () => {
        const current = fleet.instance(slot);
        if (current === null || current.process.pid === victim.process.pid) return null;
        if (stillRunning(victim.process)) return null;
        return (await answersReady(victim.port, 300)) ? Date.now() : null;
      },
      { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 10, what: `naive slot ${slot} answering /ready again` },
    );
    const current = fleet.instance(slot)!;
    result.newPid = current.process.pid;
    result.respawnedAt = current.spawnedAt;
    result.exitSeenAt =
      fleet.events.find((e) => e.event === "exited" && e.pid === victim.process.pid)?.at ?? null;
    result.faultToReadyMs = result.readyAt - injectedAt;
    result.ok = true;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  }
  return result;
}

export interface NaiveHangTrial {
  trial: number;
  slot: number;
  pid: number;
  injectedAt: number;
  capMs: number;
  /** Did `GET /ready` go unanswered (1 s timeout) while the process was stopped? */
  unansweredWhileStopped: boolean;
  /** Did the supervisor react (an exit or a restart of that slot) within the cap? */
  detected: boolean;
  /** The process was still stopped (state T) when the cap ran out. */
  stillStoppedAtCap: boolean;
}

/** SIGSTOP one naive instance and watch, for `capMs`, whether the supervisor ever notices. */
async function naiveHangTrial(
  fleet: NaiveFleet,
  slot: number,
  trial: number,
  capMs: number,
): Promise<NaiveHangTrial> {
  const victim = fleet.instance(slot)!;
  const injectedAt = Date.now();
  process.kill(victim.process.pid, "SIGSTOP");
  try {
    const unanswered = !(await answersReady(victim.port, 1_000));
    const reacted = () =>
      fleet.events.some((e) => e.pid === victim.process.pid && e.event === "exited") ||
      fleet.instance(slot)?.process.pid !== victim.process.pid;
    const remaining = Math.max(0, capMs - (Date.now() - injectedAt));
    const detected = await waitFor(() => reacted(), { timeoutMs: remaining, intervalMs: 50 }).then(
      () => true,
      () => false,
    );
    return {
      trial,
      slot,
      pid: victim.process.pid,
      injectedAt,
      capMs,
      unansweredWhileStopped: unanswered,
      detected,
      stillStoppedAtCap: processState(victim.process.pid) === "T",
    };
  } catch (error) {
    signalIfRunning(victim.process, "SIGKILL");
    throw error;
  }
}

/**
 * `count` hang trials, up to one per slot at a time (they only wait, so they can overlap). After
 * each round the stopped processes are SIGKILLed — the only way out of a hang for this
 * supervisor — and it restarts them; that restart runs under `quiet` so its burst of CPU never
 * lands inside a recovery being timed elsewhere.
 */
export async function naiveHangTrials(
  fleet: NaiveFleet,
  options: { count: number; capMs: number; quiet: Mutex },
): Promise<NaiveHangTrial[]> {
  const results: NaiveHangTrial[] = [];
  while (results.length < options.count) {
    await options.quiet.run(() => fleet.waitAllReady(TRIAL_TIMEOUT_MS));
    const slots = shuffled(fleet.ports.map((_, slot) => slot));
    const round = slots.slice(0, Math.min(slots.length, options.count - results.length));
    const victims = round.map((slot) => fleet.instance(slot)!.process);
    try {
      const trials = await Promise.all(
        round.map((slot, k) => naiveHangTrial(fleet, slot, results.length + k + 1, options.capMs)),
      );
      results.push(...trials);
    } finally {
      await options.quiet.run(async () => {
        for (const victim of victims) signalIfRunning(victim, "SIGKILL");
        await fleet.waitAllReady(TRIAL_TIMEOUT_MS);
      });
    }
  }
  return results;
}
