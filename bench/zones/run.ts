/**
 * The zone failover benchmark (`npm run bench:zones`): under open-loop load at 60 % of the
 * fleet's declared capacity, zone-a is blackholed for 30 s, then restored. Two scenarios (three
 * zones, where the survivors would reach 90 %; two zones, where they would reach 120 %), each in
 * two modes on the same fleet file: NAIVE (`failover.automatic: false`: the data plane ejects the
 * dead zone and its traffic lands on the survivors at once) and HOMEOSTAT (the controller
 * evacuates the zone in capacity-checked steps, sheds, scales up). Reports failed requests by
 * criticality, survivors' utilization (each instance's own counters), when traffic left the zone
 * and when added capacity was ready. Writes bench/results/zones-<time>.json and prints markdown.
 * Loopback only, fixed ports 7400 (front), 7470 (API), 17400–17411 (instances); every process it
 * starts is stopped, also on Ctrl-C.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { Teardown } from "../common/teardown.ts";
import type { HomeostatUnderTest } from "../foundation/homeostat.ts";
import { machineInfo } from "../foundation/machine.ts";
import { codeState } from "../proxy/codeState.ts";
import { fleetYaml, scenario } from "./fleet.ts";
import { type Mode, readOptions, type ScenarioName } from "./options.ts";
import { renderMarkdown } from "./report.ts";
import { summarizeScenario, type ZonesBenchResult } from "./results.ts";
import { runTrial, type Trial } from "./trial.ts";

function log(message: string): void {
  process.stderr.write(`[bench:zones] ${message}\n`);
}

function pct(value: number | null | undefined): string {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(1)} %`;
}

function describeTrial(t: Trial): string {
  const f = t.figures;
  if (!t.ok || f === null) return `FAILED: ${t.error ?? "?"}`;
  const failed = (["critical", "default", "sheddable"] as const)
    .map((c) => `${c} ${pct(f.sinceFault[c].failedShare)}`)
    .join(", ");
  return (
    `failed ${failed}; survivors' peak ${pct(f.peakSurvivorUtilization)}, above ${Math.round(f.longestAboveCeilingMs / 100) / 10} s at most; ` +
    `last attempt to the zone ${f.failedZoneLastAttemptMs === null ? "–" : `${(f.failedZoneLastAttemptMs / 1000).toFixed(1)} s`}; ` +
    `failover events ${f.failoverEvents.length}`
  );
}

async function main(): Promise<void> {
  const options = readOptions(process.env);
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const machine = machineInfo(REPO);
  const code = codeState(REPO);
  const teardown = new Teardown(log);
  const { ledger } = teardown;
  let current: HomeostatUnderTest | null = null;

  try {
    const scratch = realpathSync(mkdtempSync(join(tmpdir(), "homeostat-bench-zones-")));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    teardown.add("stop the running controller", async () => {
      const running = current as HomeostatUnderTest | null;
      if (running !== null) await running.stop();
    });

    const combos: { name: ScenarioName; mode: Mode }[] = options.scenarios.flatMap((name) =>
      options.modes.map((mode) => ({ name, mode })),
    );
    log(
      `${combos.length} scenario × mode combination(s), ${options.repeats} trial(s) each, ` +
        `~${Math.round((options.warmupMs + options.outageMs + options.tailMs) / 1000) + 10} s per trial`,
    );
    const trials: Trial[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      // Rotate the order so that a slow drift of the machine does not always favour one mode.
      const shift = repeat % combos.length;
      for (const { name, mode } of [...combos.slice(shift), ...combos.slice(0, shift)]) {
        log(`#${repeat + 1} ${name} ${mode.toUpperCase()}…`);
        const trial = await runTrial({
          name,
          mode,
          repeat,
          options,
          scratch,
          ledger,
          onController: (h) => {
            current = h;
          },
          log,
        });
        trials.push(trial);
        log(`    ${describeTrial(trial)}`);
      }
    }

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const fleets: Record<string, string> = {};
    for (const { name, mode } of combos) fleets[`${name}-${mode}`] = fleetYaml(scenario(name), mode);
    const result: ZonesBenchResult = {
      benchmark: "zones",
      command: [
        ...Object.entries(process.env)
          .filter(([key]) => key.startsWith("BENCH_"))
          .map(([key, value]) => `${key}=${value}`),
        "npm run bench:zones",
      ].join(" "),
      ...runTimes(startedAt, finishedAt),
      dateUtc,
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      code,
      options,
      fleets,
      summaries: combos.map(({ name, mode }) => summarizeScenario(name, mode, trials)),
      trials,
      leftoverPids,
    };
    const ok = leftoverPids.length === 0 && trials.every((t) => t.ok);
    publishResult("zones", startedAt, result, renderMarkdown, log, ok);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
