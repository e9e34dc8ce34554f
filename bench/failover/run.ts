/**
 * The failover benchmark (`npm run bench:failover`): under steady open-loop load, one of three
 * instances is SIGKILLed; how many client requests fail, and how long the proxy keeps sending
 * requests to the dead instance. Homeostat (a real controller, which also replaces the instance)
 * next to HAProxy over three instances the bench starts itself (routing only), with default checks,
 * checks tuned to Homeostat's probe, tuned checks plus redispatched retries, and (its best
 * configuration here) tuned plus passive checks plus redispatched retries — all in one run. Every
 * trial gets the bench's own checks (analysis.ts `trialChecks`); the headline and the paired
 * comparisons are derived from the trials (results.ts).
 * Writes bench/results/failover-<time>.json and prints a markdown section.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { freePortRange, REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { buildLoadgen } from "../common/loadgen/native.ts";
import { Hangs } from "../dataplane/upstreams.ts";
import { machineInfo } from "../foundation/machine.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { codeState } from "../proxy/codeState.ts";
import { stopManagedHaproxyIn } from "../proxy/homeostatDataPlane.ts";
import { waitQuiet } from "../proxy/quiet.ts";
import { log, Teardown } from "../proxy/teardown.ts";
import { ensureCommands, toolVersions } from "../proxy/tools.ts";
import { runWrk, type WrkResult } from "../proxy/wrk.ts";
import { trialChecks } from "./analysis.ts";
import type { HaproxyScenario } from "./haproxyConfig.ts";
import { BenchInstances, HaproxyUnderTest } from "./haproxyFleet.ts";
import {
  type HomeostatFleet,
  incidentAfter,
  killInstance,
  REPLICAS,
  readyVictim,
  SERVICE,
  startHomeostatFleet,
} from "./homeostatFleet.ts";
import { fleetProbes, type HungResult, hungTrials, summarizeHung } from "./hung.ts";
import { type FailoverOptions, readFailoverOptions } from "./options.ts";
import { renderFailoverMarkdown } from "./report.ts";
import {
  asTrialScenario,
  type FailoverResult,
  type FailoverScenario,
  type FailoverTrial,
  haproxyBestOf,
  headlineOf,
  isHomeostatScenario,
  pairedComparisons,
  summarizeScenario,
  withChecks,
} from "./results.ts";
import { type HomeostatScenario, loadAndKill, QUIET_PERCENT } from "./trial.ts";

/**
 * The Homeostat scenarios: the default traffic settings (what the target is about), and the same
 * with a fixed per-instance limit instead of the adaptive one, to tell what the adaptive limit
 * does during a failover.
 */
const HOMEOSTAT_TRAFFIC: [HomeostatScenario, string | undefined][] = [
  ["homeostat", undefined],
  ["homeostat-static-limit", "      limits: { adaptive: false }"],
  // Issue 14: the same defaults, the bytes moved by the managed HAProxy.
  ["homeostat-haproxy", "      engine: haproxy"],
];

async function capacity(port: number, options: FailoverOptions, ledger: ProcessLedger): Promise<WrkResult> {
  const url = `http://127.0.0.1:${port}${options.path}`;
  const { threads, connections, durationS, warmupS } = options.calibration;
  await waitQuiet(QUIET_PERCENT);
  await runWrk({ threads, connections, durationS: warmupS }, url, ledger);
  return await runWrk({ threads, connections, durationS }, url, ledger);
}

function emptyTrial(scenario: FailoverScenario, repeat: number, victim: string, rate: number): FailoverTrial {
  return {
    scenario,
    repeat,
    victim,
    ratePerSecond: rate,
    killedAt: 0,
    figures: {
      requests: 0,
      failed: 0,
      failures: {},
      failedLongBeforeKill: 0,
      retried: 0,
      hedged: 0,
      lastTouchedMs: null,
      lastFailedMs: null,
      victimServedBeforeKill: 0,
      replacementServesMs: null,
      baselineP99Ms: null,
      afterKillP99Ms: null,
      afterKillMaxMs: null,
      worstAfterKillMs: null,
      achievedRate: 0,
      maxLatenessMs: 0,
    },
    controller: null,
    before: null,
    warmup: null,
    markedDownMs: null,
    markedDownReason: null,
    ok: false,
    checks: [],
    checksOk: false,
  };
}

async function homeostatTrial(
  scenario: HomeostatScenario,
  fleet: HomeostatFleet,
  trial: FailoverTrial,
  options: FailoverOptions,
  scratch: string,
  ledger: ProcessLedger,
): Promise<void> {
  fleet.homeostat.assertRunning();
  const victim = await readyVictim(fleet.homeostat, trial.victim);
  const { killedAt, figures, warmup, before, generator } = await loadAndKill({
    scenario,
    port: fleet.port,
    victim: trial.victim,
    ratePerSecond: trial.ratePerSecond,
    bench: options,
    scratch,
    ledger,
    kill: killInstance(victim),
  });
  trial.killedAt = killedAt;
  trial.figures = figures;
  trial.warmup = warmup;
  trial.before = before;
  trial.generator = generator;
  trial.controller = await incidentAfter(fleet.homeostat, trial.victim, killedAt);
  await fleet.homeostat.waitAllReady(REPLICAS, 30_000);
}

async function haproxyTrial(
  haproxy: HaproxyUnderTest,
  instances: BenchInstances,
  k: number,
  trial: FailoverTrial,
  options: FailoverOptions,
  scratch: string,
  ledger: ProcessLedger,
): Promise<void> {
  await instances.ensureAll();
  await haproxy.waitAllUp(instances.ports.map((_, j) => instances.name(j)));
  try {
    const { killedAt, figures, warmup, before, generator } = await loadAndKill({
      scenario: asTrialScenario(haproxy.scenario),
      port: haproxy.port,
      victim: trial.victim,
      ratePerSecond: trial.ratePerSecond,
      bench: options,
      scratch,
      ledger,
      kill: () => instances.kill(k),
    });
    trial.killedAt = killedAt;
    trial.figures = figures;
    trial.warmup = warmup;
    trial.before = before;
    trial.generator = generator;
    const down = haproxy.downEvent(trial.victim, killedAt);
    trial.markedDownMs = down === null ? null : down.at - killedAt;
    trial.markedDownReason = down?.reason ?? null;
  } finally {
    await instances.ensureAll();
  }
}

async function main(): Promise<void> {
  const options = readFailoverOptions(process.env);
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const teardown = new Teardown();
  const { ledger } = teardown;
  try {
    ensureCommands(["haproxy", "wrk"]);
    const machine = machineInfo(REPO);
    const code = codeState(REPO);
    const tools = toolVersions();
    const scratch = mkdtempSync(join(tmpdir(), "homeostat-bench-failover-"));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );

    const picked = options.scenarios ?? [];
    const fleets = new Map<HomeostatScenario, HomeostatFleet>();
    for (const [scenario, traffic] of HOMEOSTAT_TRAFFIC.filter(([s]) => picked.includes(s))) {
      log(`starting ${scenario}: a controller with 3 instances of the demo app behind a front port…`);
      const homeDir = join(scratch, scenario);
      mkdirSync(homeDir, { recursive: true });
      const started = await startHomeostatFleet(homeDir, ledger, traffic);
      fleets.set(scenario, started);
      teardown.add(`${scenario} down`, async () => {
        await started.homeostat.stop();
        // The managed HAProxy outlives its data plane by design; `down` should have stopped it.
        const left = await stopManagedHaproxyIn(started.homeostat.stateDir, ledger);
        if (left !== null)
          log(`${scenario}: the managed HAProxy (pid ${left}) was still running after down: stopped it`);
      });
    }
    // Capacity and the probe the tuned checks copy: from Homeostat's default fleet, else the first.
    const fleet = fleets.get("homeostat") ?? [...fleets.values()][0];
    if (fleet === undefined)
      throw new Error(
        "BENCH_SCENARIOS: no Homeostat scenario (homeostat, homeostat-static-limit, homeostat-haproxy)",
      );

    log("starting 3 instances of the demo app and HAProxy in front of them…");
    const base = await freePortRange(REPLICAS);
    const instances = new BenchInstances(
      Array.from({ length: REPLICAS }, (_, k) => base + k),
      ledger,
    );
    teardown.add("stop the bench's instances", () => instances.stop());
    await instances.ensureAll();
    const scenarios: HaproxyScenario[] = ["haproxy-default", "haproxy-tuned"];
    if (options.redispatch) scenarios.push("haproxy-redispatch");
    if (options.passive) scenarios.push("haproxy-passive");
    // The calibration goes through HAProxy with default checks; the hung trials need the tuned one.
    const needed = new Set<HaproxyScenario>(["haproxy-default"]);
    if (options.hung != null && fleets.has("homeostat-haproxy")) needed.add("haproxy-tuned");
    const started = scenarios.filter((s) => picked.includes(s) || needed.has(s));
    const killScenarios = scenarios.filter((s) => picked.includes(s));
    const haproxies = new Map<HaproxyScenario, HaproxyUnderTest>();
    for (const scenario of started) {
      const h = await HaproxyUnderTest.start({
        scenario,
        dir: scratch,
        upstreamPorts: instances.ports,
        tuning: fleet.readiness,
        errorLimit: options.passiveErrorLimit,
        ledger,
      });
      haproxies.set(scenario, h);
      teardown.add(`stop ${scenario}`, () => h.stop());
    }

    log(`capacity through Homeostat's front port (${options.path})…`);
    const homeostatCapacity = await capacity(fleet.port, options, ledger);
    const haproxyDefault = haproxies.get("haproxy-default")!;
    await haproxyDefault.waitAllUp(instances.ports.map((_, k) => instances.name(k)));
    const haproxyCapacity = await capacity(haproxyDefault.port, options, ledger);
    const rate = options.rate ?? Math.round(homeostatCapacity.requestsPerSecond * options.loadFraction);
    log(
      `capacity: homeostat ${Math.round(homeostatCapacity.requestsPerSecond)} req/s, haproxy ${Math.round(haproxyCapacity.requestsPerSecond)} req/s; load ${rate} req/s`,
    );
    await fleet.homeostat.waitAllReady(REPLICAS, 30_000);

    const order: FailoverScenario[] = [...fleets.keys(), ...killScenarios];
    const trials: FailoverTrial[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      const k = repeat % REPLICAS;
      const rotated = [...order.slice(repeat % order.length), ...order.slice(0, repeat % order.length)];
      for (const scenario of rotated) {
        const trial = emptyTrial(scenario, repeat, `api-${k}`, rate);
        try {
          if (isHomeostatScenario(scenario)) {
            await homeostatTrial(scenario, fleets.get(scenario)!, trial, options, scratch, ledger);
          } else await haproxyTrial(haproxies.get(scenario)!, instances, k, trial, options, scratch, ledger);
          trial.ok = true;
        } catch (error) {
          trial.error = error instanceof Error ? error.message : String(error);
        }
        withChecks(
          trial,
          trialChecks({
            ran: trial.ok,
            error: trial.error ?? null,
            figures: trial.figures,
            warmupFailed: trial.warmup === null ? null : trial.warmup.non2xx + trial.warmup.errors,
            quietBefore: trial.before?.quiet ?? null,
            killSeenMs: isHomeostatScenario(scenario)
              ? (trial.controller?.detectedMs ?? null)
              : trial.markedDownMs,
            maxLatenessMs: options.maxGeneratorLatenessMs,
            generator: trial.generator ?? null,
          }),
        );
        trials.push(trial);
        const f = trial.figures;
        const failedChecks = trial.checks.filter((c) => !c.ok);
        log(
          `  #${repeat + 1} ${scenario} kill ${trial.victim}: ${trial.ok ? `${f.failed} failed, ${f.retried} retried, ${f.hedged} hedged of ${f.requests}; last touched ${f.lastTouchedMs === null ? "–" : `${Math.round(f.lastTouchedMs)} ms`}; ${isHomeostatScenario(scenario) ? `detected ${trial.controller?.detectedMs} ms, replacement ready ${trial.controller?.replacementReadyMs} ms, serves ${f.replacementServesMs === null ? "–" : Math.round(f.replacementServesMs)} ms` : `marked down ${trial.markedDownMs === null ? "–" : Math.round(trial.markedDownMs)} ms (${trial.markedDownReason ?? "no reason printed"})`}; warm-up failed ${trial.warmup === null ? "–" : trial.warmup.non2xx + trial.warmup.errors}` : `FAILED ${trial.error}`}; checks ${trial.checksOk ? "ok" : `FAILED: ${failedChecks.map((c) => `${c.name} (${c.detail})`).join(", ")}`}`,
        );
      }
    }

    let hung: HungResult | null = null;
    const hungFleet = fleets.get("homeostat-haproxy");
    if (options.hung != null && hungFleet !== undefined) {
      log(
        `hung: ${options.hung.trials} rounds of Homeostat + HAProxy and HAProxy tuned, one instance SIGSTOPped ${options.hung.hangMs / 1000} s at ${options.hung.rate} req/s…`,
      );
      const hangs = new Hangs();
      teardown.add("continue every hung instance", async () => hangs.continueAll());
      const hungRun = await hungTrials(
        {
          fleet: hungFleet,
          service: SERVICE,
          haproxy: haproxies.get("haproxy-tuned") ?? null,
          instances,
          binary: buildLoadgen(scratch),
          scratch,
          ledger,
          hangs,
        },
        options.hung,
      );
      hung = summarizeHung(options.hung, await fleetProbes(hungFleet.fleetFile), hungRun);
    }

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const summaries = order.map((scenario) => summarizeScenario(scenario, trials));
    const homeostatTrials = trials.filter((t) => t.scenario === "homeostat");
    const engineTrials = trials.filter((t) => t.scenario === "homeostat-haproxy");
    const haproxyBest = haproxyBestOf(order);
    const headline = headlineOf(trials, haproxyBest);
    log(`headline: ${headline}`);
    const fleetYaml = Object.fromEntries([...fleets].map(([s, f]) => [s, f.fleetYaml]));
    const result: FailoverResult = {
      benchmark: "failover",
      ...runTimes(startedAt, finishedAt),
      dateUtc,
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      code,
      tools,
      options,
      calibration: { homeostat: homeostatCapacity, haproxyDefault: haproxyCapacity, ratePerSecond: rate },
      homeostatReadiness: fleet.readiness,
      fleetYaml,
      haproxyConfigs: Object.fromEntries([...haproxies].map(([s, h]) => [s, h.config])),
      trials,
      summaries,
      haproxyBest,
      headline,
      paired: pairedComparisons(trials, haproxyBest),
      targets: {
        zeroFailedThroughHomeostat:
          homeostatTrials.length > 0 && homeostatTrials.every((t) => t.ok && t.figures.failed === 0),
        zeroFailedThroughHomeostatHaproxy:
          engineTrials.length === 0 ? null : engineTrials.every((t) => t.ok && t.figures.failed === 0),
      },
      hung,
      leftoverPids,
    };
    const ok =
      leftoverPids.length === 0 && trials.every((t) => t.ok) && (hung?.trials.every((t) => t.ok) ?? true);
    publishResult("failover", startedAt, result, renderFailoverMarkdown, log, ok);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
