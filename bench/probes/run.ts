/**
 * The real-probes benchmark (`npm run bench:probes`, issue 15): what watching real instances costs
 * the controller. A fleet as a new user writes it — 3 services × 20 instances of a bare node:http
 * server, readiness and liveness HTTP probes every 1 s (120 probes/s) — runs under a real
 * `homeostat up` (controller, data-plane process, instance processes); once every instance has
 * been ready for a while, the controller's CPU (utime + stime from /proc) over a 60 s window is
 * divided by the probes it ran in that window (its own `homeostat_controller_probes_total`).
 * The data plane's and the instances' CPU are reported beside it, never counted in it; so is what
 * the rest of the machine was doing (load, busy CPUs). Knobs: bench/probes/options.ts
 * (PROBES_INTERVAL_MS=1000,5000 separates the fixed cost from the per-probe one; PROBES_PROFILE=1
 * samples the controller with V8's profiler over the window and saves the .cpuprofile;
 * PROBES_REPO=DIR measures another checkout, e.g. a commit exported with `git archive`).
 * Writes bench/results/probes-<time>.json and prints markdown. Loopback only; ports 17590 (API),
 * 17591.. (front), 18500.. (instances). Run it under `flock /tmp/homeostat-bench.lock` on a shared
 * machine.
 */

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "../../test/helpers/e2e.ts";
import { publishResult, RESULTS_DIR, resultStamp, runBench, runTimes } from "../common/benchRun.ts";
import { Teardown } from "../common/teardown.ts";
import { machineInfo } from "../foundation/machine.ts";
import { codeState } from "../proxy/codeState.ts";
import { readOptions } from "./options.ts";
import { type ProbesBenchResult, renderMarkdown, TARGET_MS_PER_PROBE } from "./report.ts";
import { runTrial, type TrialResult } from "./trial.ts";

function log(message: string): void {
  process.stderr.write(`[bench:probes] ${message}\n`);
}

async function main(): Promise<void> {
  const options = readOptions();
  const repo = options.repo ?? REPO;
  const startedAt = new Date();
  const teardown = new Teardown(log);
  const machine = machineInfo(repo);
  const code = codeState(repo);
  log(
    `measuring ${repo} (${code.commit?.slice(0, 12) ?? "not a git checkout"}); load ${machine.loadAverage1m}`,
  );
  const trials: TrialResult[] = [];
  try {
    for (let run = 0; run < options.runs; run++) {
      for (const intervalMs of options.intervalsMs) {
        log(
          `run ${run + 1}/${options.runs}: ${options.services} × ${options.replicas} instances, probes every ${intervalMs} ms`,
        );
        const { result, profile } = await runTrial(
          {
            repo,
            shape: {
              services: options.services,
              replicas: options.replicas,
              intervalMs,
              timeoutMs: options.timeoutMs,
              basePort: options.basePort,
              frontPort: options.apiPort + 1,
            },
            apiPort: options.apiPort,
            settleMs: options.settleMs,
            windowMs: options.windowMs,
            profile: options.profile,
            controllerFlags: options.controllerFlags,
            log,
          },
          teardown,
        );
        if (profile !== null) {
          mkdirSync(RESULTS_DIR, { recursive: true });
          const file = join(
            RESULTS_DIR,
            `probes-${resultStamp(startedAt)}-${intervalMs}ms-run${run + 1}.cpuprofile`,
          );
          writeFileSync(file, JSON.stringify(profile));
          result.profileFile = file;
        }
        log(
          `${intervalMs} ms: ${result.probes.perSecond.toFixed(1)} probes/s, controller ${result.controller.percentOfCore.toFixed(2)} % of a core = ${result.controller.cpuMsPerProbe.toFixed(3)} ms/probe, RSS ${result.controller.rssMiB.end.toFixed(0)} MiB; restarts ${result.restartsInWindow}; machine busy ${result.machine.busyPercent.toFixed(0)} %`,
        );
        trials.push(result);
      }
    }
  } finally {
    await teardown.run();
  }
  const finishedAt = new Date();
  const atOneSecond = trials.filter((t) => t.intervalMs === 1000 && t.instances >= 60);
  const met =
    atOneSecond.length === 0
      ? null
      : atOneSecond.every(
          (t) => t.controller.cpuMsPerProbe <= TARGET_MS_PER_PROBE && t.restartsInWindow === 0,
        );
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith("PROBES_"))
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
  const result: ProbesBenchResult = {
    ...runTimes(startedAt, finishedAt),
    command: `${env ? `${env} ` : ""}flock /tmp/homeostat-bench.lock npm run bench:probes`,
    label: process.env.PROBES_LABEL ?? null,
    repo,
    code,
    machine,
    options: { ...options },
    trials,
    met,
  };
  publishResult("probes", startedAt, result, renderMarkdown, log, met !== false);
}

await runBench(main, log);
