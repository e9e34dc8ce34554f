/**
 * The data-plane benchmark (`npm run bench:dataplane`), three scenarios under 1,000 req/s of
 * open-loop load over 50 connections:
 *
 * - (b) hung instance: one of three instances SIGSTOPped for 8 s, through Homeostat, nginx and
 *   HAProxy (each at its best), back to back in one run;
 * - (a) controller SIGKILL: `kill -9` of Homeostat's controller process only, with the data plane
 *   in its own process (`--data-plane=process`) and inside the controller (`in-process`);
 * - (c) the data-plane process itself: a planned restart (handover) and `kill -9`.
 *
 * Writes bench/results/dataplane-<time>.json and prints a markdown section for docs/benchmarks.md.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { apiClient } from "../../src/cli/apiClient.ts";
import { freePortRange, REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { buildLoadgen } from "../common/loadgen/native.ts";
import { machineInfo } from "../foundation/machine.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { codeState } from "../proxy/codeState.ts";
import { log, Teardown } from "../proxy/teardown.ts";
import { ensureCommands, toolVersions } from "../proxy/tools.ts";
import { hungVerdict } from "./analysis.ts";
import { HomeostatFleet, hasDataPlaneFlag, listenerPids, REPLICAS } from "./homeostat.ts";
import {
  DATA_PLANE_FAULTS,
  type DataPlaneMode,
  type DataPlaneOptions,
  type HungContender,
  readDataPlaneOptions,
} from "./options.ts";
import { type ProxyUnderTest, startHaproxy, startNginx } from "./proxies.ts";
import { renderDataPlaneMarkdown } from "./report.ts";
import {
  type DataPlaneFaultTrial,
  type DataPlaneResult,
  everyTrial,
  type HungTrial,
  invalidGenerator,
  type KillTrial,
  type TrialCommon,
  zeroFailedEveryTrial,
} from "./results.ts";
import { type LoadedTrial, loadWithFault } from "./trial.ts";
import { epochNow, Hangs, Upstreams, waitServedByAll } from "./upstreams.ts";

const NAMES = Array.from({ length: REPLICAS }, (_, k) => `api-${k}`);

interface Bench {
  options: DataPlaneOptions;
  binary: string;
  scratch: string;
  ledger: ProcessLedger;
  hangs: Hangs;
}

/** A trial's record before it has run: what every scenario's trial starts from. */
function notRunYet(repeat: number): TrialCommon {
  return { repeat, ok: false, before: null, fault: null, figures: null, warmup: null, generator: null };
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function logTrial(what: string, t: HungTrial | KillTrial | DataPlaneFaultTrial): void {
  const f = t.figures;
  if (!t.ok || f === null) {
    log(`  ${what}: FAILED ${t.error}`);
    return;
  }
  const kinds = Object.entries(f.failures)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  log(
    `  ${what}: ${f.served}/${f.requests} served (${f.servedPercent.toFixed(2)} %), failed ${f.failed}${kinds ? ` (${kinds})` : ""}; p50 ${f.latency?.p50.toFixed(0)} p99 ${f.latency?.p99.toFixed(0)} max ${f.latency?.max.toFixed(0)} ms; lag p99 ${f.lateness?.p99.toFixed(0)} ms; ${f.achievedRate.toFixed(0)} req/s${t.generator?.valid === false ? `; NOT COUNTED: ${t.generator.invalidReason}` : ""}`,
  );
}

/** Scenario (b): rounds of one trial per contender, the order rotated each round. */
async function hungScenario(
  bench: Bench,
  teardown: Teardown,
): Promise<{ trials: HungTrial[]; configs: DataPlaneResult["configs"] }> {
  // Its processes are stopped when it ends (the next scenario runs on a quiet machine), or by the
  // bench's teardown if it fails half-way.
  const stops: (() => Promise<void>)[] = [];
  let stopped: Promise<void> | null = null;
  const stopAll = (): Promise<void> => {
    stopped ??= (async () => {
      for (const stop of stops.reverse())
        await stop().catch((e: unknown) => log(`hung: ${describeError(e)}`));
    })();
    return stopped;
  };
  teardown.add("hung: stop its fleet, proxies and instances", stopAll);
  try {
    return await hungTrials(bench, stops);
  } finally {
    await stopAll();
  }
}

async function hungTrials(
  bench: Bench,
  stops: (() => Promise<void>)[],
): Promise<{ trials: HungTrial[]; configs: DataPlaneResult["configs"] }> {
  const { options, ledger } = bench;
  const configs: DataPlaneResult["configs"] = { homeostatFleet: null, nginx: null, haproxy: null };
  let fleet: HomeostatFleet | null = null;
  if (options.hungContenders.includes("homeostat")) {
    log("hung: starting Homeostat (homeostat up, 3 instances of the demo app behind a front port)…");
    const started = await HomeostatFleet.start(join(bench.scratch, "hung-homeostat"), null, ledger);
    fleet = started;
    stops.push(() => started.stop());
    configs.homeostatFleet = started.fleetYaml;
  }
  const proxies = new Map<HungContender, ProxyUnderTest>();
  let upstreams: Upstreams | null = null;
  if (options.hungContenders.some((c) => c !== "homeostat")) {
    log("hung: starting 3 instances of the demo app, and nginx / HAProxy in front of them…");
    const base = await freePortRange(REPLICAS);
    const started = new Upstreams(
      Array.from({ length: REPLICAS }, (_, k) => base + k),
      ledger,
    );
    upstreams = started;
    stops.push(() => started.stop());
    await started.ensureAll();
    for (const name of ["nginx", "haproxy"] as const) {
      if (!options.hungContenders.includes(name)) continue;
      const start = name === "nginx" ? startNginx : startHaproxy;
      const proxy = await start(bench.scratch, started.ports, options.proxyTimeoutMs, ledger);
      proxies.set(name, proxy);
      configs[name] = proxy.config;
      stops.push(() => proxy.stop());
    }
  }

  const trials: HungTrial[] = [];
  const order = options.hungContenders;
  for (let repeat = 0; repeat < options.trials; repeat++) {
    const k = repeat % REPLICAS;
    const shift = repeat % order.length;
    for (const contender of [...order.slice(shift), ...order.slice(0, shift)]) {
      const trial: HungTrial = {
        contender,
        ...notRunYet(repeat),
        victim: NAMES[k]!,
        victimContinued: null,
        verdict: null,
      };
      try {
        let port: number;
        let victim: ReturnType<Upstreams["identity"]>;
        if (contender === "homeostat") {
          victim = await fleet!.readyVictim(trial.victim);
          port = fleet!.port;
        } else {
          const proxy = proxies.get(contender)!;
          await upstreams!.ensureAll();
          await proxy.waitAllUp(NAMES);
          victim = upstreams!.identity(k);
          port = proxy.port;
        }
        await waitServedByAll(port, NAMES);
        let continued: boolean | null = null;
        const loaded = await loadWithFault({
          port,
          bench: options,
          afterFaultStartMs: options.hangMs + options.afterHangMs,
          binary: bench.binary,
          scratch: bench.scratch,
          ledger,
          fault: async () => {
            const hang = await bench.hangs.hang(victim, options.hangMs);
            continued = hang.continued;
            return { fromEpochMs: hang.stoppedAt, toEpochMs: hang.continuedAt };
          },
        });
        Object.assign(trial, {
          before: loaded.before,
          fault: loaded.fault,
          figures: loaded.figures,
          warmup: loaded.warmup,
          generator: loaded.generator,
          victimContinued: continued,
          verdict: hungVerdict(loaded.figures),
          ok: true,
        });
      } catch (error) {
        trial.error = describeError(error);
        bench.hangs.continueAll();
      }
      trials.push(trial);
      logTrial(`#${repeat + 1} ${contender}, ${trial.victim} hung`, trial);
    }
  }
  return { trials, configs };
}

/** Scenario (a): per mode and trial, a fresh fleet, load, SIGKILL of the controller, down. */
/**
 * One trial on a fresh fleet: start it, wait until every instance serves, run `trial` (which
 * puts the load and the fault on it), record its figures; the fleet is stopped whatever happens.
 */
async function onFreshFleet(
  bench: Bench,
  dir: string,
  mode: DataPlaneMode | null,
  record: KillTrial | DataPlaneFaultTrial,
  trial: (
    fleet: HomeostatFleet,
    fault: (run: () => Promise<{ fromEpochMs: number; toEpochMs: number }>) => Promise<LoadedTrial>,
  ) => Promise<LoadedTrial>,
): Promise<void> {
  let fleet: HomeostatFleet | null = null;
  try {
    fleet = await HomeostatFleet.start(join(bench.scratch, dir), mode, bench.ledger);
    await waitServedByAll(fleet.port, NAMES);
    const started = fleet;
    const loaded = await trial(started, (run) =>
      loadWithFault({
        port: started.port,
        bench: bench.options,
        afterFaultStartMs: bench.options.afterKillMs,
        binary: bench.binary,
        scratch: bench.scratch,
        ledger: bench.ledger,
        fault: async () => {
          // Everything the controller started is remembered before the fault (a killed process's
          // children are re-parented, and the bench must still stop them).
          started.noteDescendants();
          return await run();
        },
      }),
    );
    Object.assign(record, {
      before: loaded.before,
      fault: loaded.fault,
      figures: loaded.figures,
      warmup: loaded.warmup,
      generator: loaded.generator,
      ok: true,
    });
  } catch (error) {
    record.error = describeError(error);
  } finally {
    await fleet?.stop();
  }
}

async function controllerKillScenario(
  bench: Bench,
  flag: boolean,
  skipped: string[],
): Promise<{ trials: KillTrial[]; fleetYaml: string | null }> {
  const { options } = bench;
  const modes = options.modes.filter((mode) => {
    if (flag || mode === "in-process") return true;
    skipped.push(
      "controller kill with `--data-plane=process`: this code's `homeostat up` has no `--data-plane` flag (set BENCH_FORCE_DATA_PLANE_FLAG=1 to pass it anyway)",
    );
    return false;
  });
  const trials: KillTrial[] = [];
  let fleetYaml: string | null = null;
  for (let repeat = 0; repeat < options.trials; repeat++) {
    const rotated = repeat % 2 === 0 ? modes : [...modes].reverse();
    for (const mode of rotated) {
      const trial: KillTrial = {
        mode,
        flagPassed: flag,
        ...notRunYet(repeat),
        controllerPid: null,
        listenersBefore: [],
        listenersAfter: [],
      };
      await onFreshFleet(
        bench,
        `kill-${mode}-${repeat}`,
        flag ? mode : null,
        trial,
        async (fleet, withFault) => {
          fleetYaml ??= fleet.fleetYaml;
          const controller = await fleet.controllerProcess();
          trial.controllerPid = controller.pid;
          const loaded = await withFault(async () => {
            trial.listenersBefore = listenerPids(fleet.port);
            const killedAt = HomeostatFleet.killController(controller);
            return { fromEpochMs: killedAt, toEpochMs: epochNow() + options.afterKillMs };
          });
          trial.listenersAfter = listenerPids(fleet.port);
          return loaded;
        },
      );
      trials.push(trial);
      logTrial(`#${repeat + 1} controller kill, data plane ${mode}${flag ? "" : " (no flag)"}`, trial);
    }
  }
  return { trials, fleetYaml };
}

/** The data-plane process now serving `fleet`, from `/v1/dataplane`. */
async function dataPlanePid(fleet: HomeostatFleet): Promise<number | null> {
  const body = await apiClient(fleet.apiPort, { stateDir: fleet.stateDir }).get<{
    dataPlane?: { pid?: number | null };
  }>("/v1/dataplane");
  return body.dataPlane?.pid ?? null;
}

/** ms until a fresh connection to `port` gets a 200 (polled every 5 ms, at most 30 s). */
async function msUntilServing(port: number, since: number): Promise<number | null> {
  while (performance.now() - since < 30_000) {
    const answer = await fetch(`http://127.0.0.1:${port}/healthz`, {
      headers: { connection: "close" },
      signal: AbortSignal.timeout(1_000),
    }).catch(() => null);
    await answer?.arrayBuffer().catch(() => undefined);
    if (answer?.status === 200) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 5));
  }
  return null;
}

/**
 * Scenario (c): faults of the data-plane process itself under the same load — a planned restart
 * (`POST /v1/dataplane/restart`: the listening sockets handed to a successor) and `kill -9` (the
 * controller restarts it) — alternating, on a fresh fleet each trial.
 */
async function dataPlaneFaultScenario(bench: Bench): Promise<DataPlaneFaultTrial[]> {
  const { options } = bench;
  const trials: DataPlaneFaultTrial[] = [];
  for (let repeat = 0; repeat < options.trials; repeat++) {
    const kinds = repeat % 2 === 0 ? DATA_PLANE_FAULTS : [...DATA_PLANE_FAULTS].reverse();
    for (const kind of kinds) {
      const trial: DataPlaneFaultTrial = {
        kind,
        ...notRunYet(repeat),
        pidBefore: null,
        pidAfter: null,
        servingAgainMs: null,
      };
      await onFreshFleet(bench, `dataplane-${kind}-${repeat}`, "process", trial, async (fleet, withFault) => {
        trial.pidBefore = await dataPlanePid(fleet);
        const loaded = await withFault(async () => {
          const from = epochNow();
          if (kind === "planned-restart") {
            // Throws (with the API's error) unless the restart was answered 200.
            await apiClient(fleet.apiPort, { stateDir: fleet.stateDir, timeoutMs: 30_000 }).post(
              "/v1/dataplane/restart",
              { reason: "bench: planned restart under load" },
            );
          } else {
            const since = performance.now();
            process.kill(trial.pidBefore!, "SIGKILL");
            trial.servingAgainMs = await msUntilServing(fleet.port, since);
          }
          return { fromEpochMs: from, toEpochMs: epochNow() + options.afterKillMs };
        });
        fleet.noteDescendants();
        trial.pidAfter = await dataPlanePid(fleet);
        return loaded;
      });
      trials.push(trial);
      logTrial(
        `#${repeat + 1} data plane ${kind}${trial.servingAgainMs === null ? "" : ` (serving again after ${trial.servingAgainMs.toFixed(0)} ms)`}`,
        trial,
      );
    }
  }
  return trials;
}

async function main(): Promise<void> {
  const options = readDataPlaneOptions(process.env);
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const teardown = new Teardown();
  const { ledger } = teardown;
  const hangs = new Hangs();
  teardown.add("continue every process the bench stopped", async () => hangs.continueAll());
  try {
    const needs = ["cc"];
    if (options.scenarios.includes("hung")) {
      for (const c of options.hungContenders) if (c !== "homeostat") needs.push(c);
    }
    ensureCommands(needs);
    const machine = machineInfo(REPO);
    const code = codeState(REPO);
    const { haproxy, nginx } = toolVersions();
    const scratch = mkdtempSync(join(tmpdir(), "homeostat-bench-dataplane-"));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    const binary = buildLoadgen(scratch);
    const bench: Bench = { options, binary, scratch, ledger, hangs };
    const flag = hasDataPlaneFlag() || options.forceDataPlaneFlag;
    log(`homeostat up --data-plane: ${flag ? "present" : "absent in this code"}`);

    const skipped: string[] = [];
    let hung: HungTrial[] = [];
    let configs: DataPlaneResult["configs"] = { homeostatFleet: null, nginx: null, haproxy: null };
    if (options.scenarios.includes("hung")) {
      ({ trials: hung, configs } = await hungScenario(bench, teardown));
    }
    let kill: KillTrial[] = [];
    if (options.scenarios.includes("controller-kill")) {
      const done = await controllerKillScenario(bench, flag, skipped);
      kill = done.trials;
      configs.homeostatFleet ??= done.fleetYaml;
    }
    let dataPlaneFaults: DataPlaneFaultTrial[] = [];
    if (options.scenarios.includes("dataplane-fault")) {
      if (flag) dataPlaneFaults = await dataPlaneFaultScenario(bench);
      else skipped.push("data-plane faults: this code has no separate data-plane process");
    }

    await teardown.run();
    for (const [name, trials] of [
      ["hung", hung],
      ["controller kill", kill],
      ["data-plane faults", dataPlaneFaults],
    ] as const) {
      const invalid = invalidGenerator(trials);
      if (invalid > 0) {
        skipped.push(`${name}: ${invalid} trial(s) not counted, the load generator fell behind its schedule`);
      }
    }
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const result: DataPlaneResult = {
      benchmark: "dataplane",
      ...runTimes(startedAt, finishedAt),
      dateUtc,
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      code,
      tools: { haproxy, nginx },
      options,
      dataPlaneFlag: flag,
      configs,
      hung,
      controllerKill: kill,
      dataPlaneFaults,
      skipped,
      targets: {
        hung: everyTrial(hung.filter((t) => t.contender === "homeostat")),
        controllerKillZeroFailed: zeroFailedEveryTrial(
          kill.filter((t) => t.mode === "process" && t.flagPassed),
        ),
        plannedRestartZeroFailed: zeroFailedEveryTrial(
          dataPlaneFaults.filter((t) => t.kind === "planned-restart"),
        ),
      },
      leftoverPids,
    };
    const ok = leftoverPids.length === 0 && [...hung, ...kill, ...dataPlaneFaults].every((t) => t.ok);
    publishResult("dataplane", startedAt, result, renderDataPlaneMarkdown, log, ok);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
