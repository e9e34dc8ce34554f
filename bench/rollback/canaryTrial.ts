/**
 * One failing-canary trial: a fresh controller, steady load on the front port, then
 * `homeostat deploy checkout v2-errors`. The deploy must roll itself back; the trial measures how
 * fast traffic left the canary and how many errors clients saw meanwhile.
 */

import { loadavg } from "node:os";
import { join } from "node:path";
import type { FleetSpec } from "../../src/spec/index.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { analyzeCanaryTrial, type CanaryTrialFigures } from "./analysis.ts";
import { ControllerRun, type RolloutSummary } from "./controllerRun.ts";
import { type LoadHealth, OpenLoad } from "./openLoad.ts";
import type { RollbackBenchOptions } from "./options.ts";
import { FAILING, type ScenarioFacts, STABLE } from "./scenario.ts";

export interface CanaryTrial {
  trial: number;
  /** 1-minute load average when the trial began: other work on the machine skews timings. */
  loadAverage1m: number;
  ok: boolean;
  error?: string;
  /** What `homeostat deploy` printed. */
  deployOutput?: string;
  /** The rollout as the controller recorded it (verdicts included). */
  rollout?: RolloutSummary;
  figures?: CanaryTrialFigures;
  /**
   * Whether the load generator kept its schedule over the whole trial (warm-up included). An
   * invalid trial is counted and left out of every summary, whatever its figures.
   */
  load?: LoadHealth;
  /** `homeostat releases checkout` after the trial, as printed. */
  releasesText?: string;
  /** The trial's deploy events, as recorded (for the docs' walkthrough). */
  deployEvents?: { at: number; type: string; reason: string; message: string }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export async function canaryTrial(options: {
  trial: number;
  fleetFile: string;
  fleet: FleetSpec;
  facts: ScenarioFacts;
  scratch: string;
  ledger: ProcessLedger;
  bench: RollbackBenchOptions;
  /** Called with the controller once it runs, so an interrupted bench can stop it. */
  onController: (run: ControllerRun | null) => void;
}): Promise<CanaryTrial> {
  const { facts, bench } = options;
  const loadAverage1m = loadavg()[0] ?? 0;
  let run: ControllerRun | null = null;
  const load = new OpenLoad({
    port: facts.frontPort,
    path: "/",
    ratePerSecond: bench.ratePerSecond,
    timeoutMs: 10_000,
  });
  try {
    run = await ControllerRun.start({
      fleetFile: options.fleetFile,
      fleet: options.fleet,
      stateDir: join(options.scratch, `trial-${options.trial}`, "state"),
      ledger: options.ledger,
    });
    options.onController(run);
    load.start();
    // A point in the schedule, not a synchronisation: the stable release needs a baseline.
    await sleep(bench.warmupMs);
    const deploy = await run.cli(["deploy", facts.service, FAILING]);
    if (deploy.code !== 0)
      throw new Error(`deploy failed (${deploy.code}): ${deploy.stderr}${deploy.stdout}`);
    const id = await waitFor(
      async () =>
        (await run!.releases(facts.service)).rollouts.find(
          (r) => r.kind === "deploy" && r.state.to === FAILING,
        )?.id,
      { timeoutMs: 10_000, what: "the deploy's rollout record" },
    );
    // Starting + the first step's deadline, with room for a slow machine.
    const rollout = await run.finishedRollout(facts.service, id, facts.stepDeadlineMs * 2 + 60_000);
    await run.noInstanceOf(facts.service, FAILING, 60_000);
    await sleep(bench.tailMs);
    const loaded = await load.stop();
    const events = await run.events();
    const releasesText = (await run.cli(["releases", facts.service])).stdout;
    const deployEvents = events
      .filter(
        (e) =>
          (e.type.startsWith("deploy.") || e.type === "traffic.weights") &&
          (e.data as { rollout?: unknown } | undefined)?.rollout === id,
      )
      .map((e) => ({ at: e.at, type: e.type, reason: e.reason, message: e.message }));
    if (rollout.state.phase !== "rolled-back") {
      return {
        trial: options.trial,
        loadAverage1m,
        ok: false,
        error: `the deploy ended ${rollout.state.phase}, not rolled-back: ${rollout.state.reason ?? ""}`,
        deployOutput: deploy.stdout.trim(),
        rollout,
        load: loaded.health,
        deployEvents,
      };
    }
    const figures = analyzeCanaryTrial({
      service: facts.service,
      stable: STABLE,
      canary: FAILING,
      rollout: id,
      decidedAt: rollout.state.failedAt,
      events,
      records: loaded.records,
      firstStepPercent: facts.steps[0] ?? 100,
      canaryErrorRate: facts.canaryErrorRate,
    });
    const problems: string[] = [];
    if (figures.verdictReason !== "canary-failed")
      problems.push(`rolled back for ${figures.verdictReason}, not canary-failed`);
    if (figures.rollback.canaryAnswersSentAfterVerdict > 0)
      problems.push(
        `${figures.rollback.canaryAnswersSentAfterVerdict} requests sent after the verdict reached the canary`,
      );
    const { attribution } = figures;
    if (attribution.instanceMismatches > 0)
      problems.push(
        `${attribution.instanceMismatches} answers came from an app whose name (x-instance) differs from the data plane's x-homeostat-instance`,
      );
    if (attribution.canaryOutsideDeploy > 0)
      problems.push(
        `${attribution.canaryOutsideDeploy} answers by ${FAILING} came from an instance not started for the deploy`,
      );
    return {
      trial: options.trial,
      loadAverage1m,
      ok: problems.length === 0,
      ...(problems.length > 0 ? { error: problems.join("; ") } : {}),
      deployOutput: deploy.stdout.trim(),
      rollout,
      figures,
      load: loaded.health,
      releasesText,
      deployEvents,
    };
  } catch (error) {
    const output =
      run?.homeostat
        .output()
        .split("\n")
        .slice(-12)
        .map((line) => line.slice(0, 300))
        .join("\n") ?? "";
    return {
      trial: options.trial,
      loadAverage1m,
      ok: false,
      error: `${error instanceof Error ? error.message : String(error)}${output ? `\ncontroller output:\n${output}` : ""}`,
    };
  } finally {
    if (load.started) await load.stop().catch(() => undefined);
    if (run !== null) await run.stop();
    options.onController(null);
  }
}
