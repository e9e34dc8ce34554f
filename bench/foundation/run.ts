/**
 * The foundation benchmark (`npm run bench:foundation`): what the controller costs at rest, and
 * how fast it detects and recovers a killed or hung instance, next to a naive restart-on-exit
 * supervisor measured in the same run. Writes bench/results/foundation-<time>.json and prints
 * a markdown section. Loopback only; every process it starts is stopped, also on Ctrl-C.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fleetOrThrow, loadFleetFile } from "../../src/spec/index.ts";
import { freePort, freePortRange, REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { Teardown } from "../common/teardown.ts";
import { fleetFacts, fleetPorts } from "./fleetFacts.ts";
import { HomeostatUnderTest } from "./homeostat.ts";
import { type HomeostatTrial, homeostatTrial } from "./homeostatTrials.ts";
import { machineInfo } from "./machine.ts";
import { Mutex } from "./mutex.ts";
import { NaiveFleet } from "./naiveFleet.ts";
import { type NaiveKillTrial, naiveHangTrials, naiveKillTrial } from "./naiveTrials.ts";
import { readOptions } from "./options.ts";
import { sampleProcess } from "./procSample.ts";
import { renderMarkdown } from "./report.ts";
import {
  type BenchResult,
  hangBound,
  sigkillRatios,
  summarizeHomeostat,
  summarizeNaiveHang,
  summarizeNaiveKill,
} from "./results.ts";

const FLEET_FILE = join(REPO, "examples/shop/fleet.yaml");

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function portIsFree(port: number): Promise<boolean> {
  return await new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
  const options = readOptions(process.env);
  const startedAt = new Date();
  const machine = machineInfo(REPO);
  const teardown = new Teardown(log);
  const { ledger } = teardown;

  try {
    const fleet = fleetOrThrow(await loadFleetFile(FLEET_FILE));
    const facts = fleetFacts(fleet);
    const busy: number[] = [];
    for (const port of fleetPorts(fleet)) if (!(await portIsFree(port))) busy.push(port);
    if (busy.length > 0) {
      throw new Error(
        `ports ${busy.join(", ")} of ${FLEET_FILE} are in use (is \`npm start\` running?); stop it and retry`,
      );
    }

    const scratch = mkdtempSync(join(tmpdir(), "homeostat-bench-"));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );

    log(`starting homeostat on ${FLEET_FILE} (${facts.instances} instances)…`);
    const { homeostat, readyAfterMs } = await HomeostatUnderTest.start({
      fleetFile: FLEET_FILE,
      apiPort: await freePort(),
      stateDir: join(scratch, "state"),
      total: facts.instances,
      ledger,
    });
    teardown.add("homeostat down", () => homeostat.stop());
    const controllerPid = (await homeostat.status()).controller.pid;
    log(`all ${facts.instances} ready after ${Math.round(readyAfterMs)} ms; controller pid ${controllerPid}`);

    log(`sampling the idle controller for ${options.idleWindowMs / 1000} s…`);
    const idle = await sampleProcess(controllerPid, { windowMs: options.idleWindowMs, everyMs: 1000 });
    await homeostat.waitAllReady(facts.instances, 10_000);
    log(`idle: ${idle.cpuPercent.toFixed(2)} % CPU, RSS median ${idle.rssMiB.median.toFixed(1)} MiB`);

    const naivePorts = await freePortRange(options.naiveReplicas);
    const naive = await NaiveFleet.start({
      ports: Array.from({ length: options.naiveReplicas }, (_, k) => naivePorts + k),
      restartDelayMs: options.naiveRestartDelayMs,
      ledger,
    });
    teardown.add("stop the naive supervisor", () => naive.stop());

    // Interleaved, so that whatever else the machine does at a given moment weighs on both alike.
    log(`SIGKILL: ${options.trials} trials each, Homeostat and naive interleaved…`);
    const homeostatKills: HomeostatTrial[] = [];
    const naiveKills: NaiveKillTrial[] = [];
    for (let trial = 1; trial <= options.trials; trial++) {
      const h = await homeostatTrial(homeostat, { trial, fault: "SIGKILL", total: facts.instances });
      homeostatKills.push(h);
      const n = await naiveKillTrial(naive, trial);
      naiveKills.push(n);
      log(
        `  #${trial} homeostat ${h.instance}: ${h.ok ? `ready after ${h.faultToReadyMs} ms (ttd ${h.ttdMs}, ttr ${h.ttrMs})` : `FAILED ${h.error}`}; naive slot ${n.slot}: ${n.ok ? `${n.faultToReadyMs} ms` : `FAILED ${n.error}`}`,
      );
    }

    // The naive hang trials only wait (up to the cap each), so they run beside Homeostat's; the
    // mutex keeps their restarts out of Homeostat's timed recoveries.
    log(
      `SIGSTOP: ${options.trials} trials each; naive hang trials (cap ${options.hangCapMs / 1000} s) run alongside…`,
    );
    const quiet = new Mutex();
    const naiveHangsRunning = naiveHangTrials(naive, {
      count: options.trials,
      capMs: options.hangCapMs,
      quiet,
    });
    // Observed later; this keeps an early failure from being reported as unhandled meanwhile.
    naiveHangsRunning.catch(() => undefined);
    const homeostatStops: HomeostatTrial[] = [];
    for (let trial = 1; trial <= options.trials; trial++) {
      const h = await quiet.run(() =>
        homeostatTrial(homeostat, { trial, fault: "SIGSTOP", total: facts.instances }),
      );
      homeostatStops.push(h);
      log(
        `  #${trial} homeostat ${h.instance}: ${h.ok ? `detected after ${h.detectedAfterMs} ms (${h.incidentKind}), ready after ${h.faultToReadyMs} ms` : `FAILED ${h.error}`}`,
      );
    }
    log("waiting for the naive hang trials to finish…");
    const naiveHangs = await naiveHangsRunning;

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);

    const finishedAt = new Date();
    const homeostatKillSummary = summarizeHomeostat(homeostatKills);
    const naiveKillSummary = summarizeNaiveKill(naiveKills);
    const result: BenchResult = {
      benchmark: "foundation",
      ...runTimes(startedAt, finishedAt),
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      options,
      fleet: facts,
      startupToAllReadyMs: readyAfterMs,
      idle: { ...idle, pid: controllerPid },
      homeostat: {
        sigkill: { summary: homeostatKillSummary, trials: homeostatKills },
        sigstop: {
          summary: summarizeHomeostat(homeostatStops),
          bound: hangBound(homeostatStops, facts),
          trials: homeostatStops,
        },
      },
      naive: {
        sigkill: { summary: naiveKillSummary, trials: naiveKills },
        sigstop: { summary: summarizeNaiveHang(naiveHangs, options.hangCapMs), trials: naiveHangs },
      },
      ratios: sigkillRatios(homeostatKillSummary, naiveKillSummary),
      leftoverPids,
    };
    publishResult("foundation", startedAt, result, renderMarkdown, log, leftoverPids.length === 0);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
