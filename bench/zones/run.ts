/**
 * The zone failover benchmark (`npm run bench:zones`): under open-loop load at 60 % and 70 % of the
 * fleet's declared capacity, zone-a is cut off by a real network partition (nftables rules on
 * loopback that drop every packet to and from its instances' ports) for 30 s, then healed. Two
 * scenarios (three zones, two zones), each with HAProxy (active + passive checks, retries with
 * redispatch, maxconn queues with priority classes) and Homeostat on the same instances, in paired
 * rounds (same scenario and load, back to back, order alternated). Also the fault-hook simulation
 * (Homeostat's own fault API blackholes the zone inside its proxy), Homeostat only. Reports
 * failures by criticality, p99 from the due time, survivors' utilization (each instance's own
 * counters), each trial's own checks pass/fail, and every figure × HAProxy as the median of the
 * paired ratios. Writes bench/results/zones-<time>.json and prints markdown. Loopback only, fixed
 * ports 7400 (front), 7470 (API), 17400–17411 (instances); every process it starts is stopped and
 * every partition healed, also on Ctrl-C.
 */

import { execFileSync } from "node:child_process";
import { mkdtempSync, realpathSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { healOrphanedPartitions, netPartitionUnavailable } from "../common/netPartition.ts";
import { Teardown } from "../common/teardown.ts";
import { machineInfo } from "../foundation/machine.ts";
import { codeState } from "../proxy/codeState.ts";
import { allChecksPass, CHECK_NAMES } from "./analysis.ts";
import { fleetYaml, scenario } from "./fleet.ts";
import { ERRORFILE_503, HaproxyFleet } from "./haproxy.ts";
import { type FaultName, type Mode, readOptions, type ScenarioName } from "./options.ts";
import { renderMarkdown } from "./report.ts";
import { compareWithBaseline, summarizeScenario, type ZonesBenchResult } from "./results.ts";
import { type LiveTrial, runTrial, type Trial } from "./trial.ts";

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
  const g = t.generator;
  const checks = CHECK_NAMES.filter((c) => !f.checks[c]);
  return (
    `failed ${failed}; warm-up failures ${f.warmupFailed}; survivors' peak ${pct(f.peakSurvivorUtilization)}, above the ceiling ${Math.round(f.longestAboveCeilingMs)} ms at most; ` +
    `last attempt to the zone ${f.failedZoneLastAttemptMs === null ? "–" : `${(f.failedZoneLastAttemptMs / 1000).toFixed(1)} s`}; ` +
    `failover events ${f.failoverEvents.length}; checks ${allChecksPass(f.checks) ? "pass" : `MISS (${checks.join(", ")})`}; ` +
    `generator ${g?.valid ? "valid" : `INVALID (${g?.invalidReason ?? "?"})`}, ${g?.achievedRatePerSecond?.toFixed(1) ?? "?"} of ${t.ratePerSecond} req/s; ` +
    `${(t.wallMs / 1000).toFixed(0)} s wall`
  );
}

interface Group {
  name: ScenarioName;
  fault: FaultName;
  loadFraction: number;
  modes: Mode[];
}

async function main(): Promise<void> {
  const options = readOptions(process.env);
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const machine = machineInfo(REPO);
  const code = codeState(REPO);
  const teardown = new Teardown(log);
  const { ledger } = teardown;
  const live: LiveTrial = { stop: null, partition: null };

  try {
    if (options.faults.includes("partition")) {
      const why = await netPartitionUnavailable();
      if (why !== null)
        throw new Error(`the partition fault cannot run: ${why} (BENCH_FAULTS=hook runs without it)`);
      const orphans = await healOrphanedPartitions();
      if (orphans.length > 0) log(`healed partitions left by dead processes: ${orphans.join(", ")}`);
    }
    if (options.modes.includes("haproxy")) {
      try {
        execFileSync("haproxy", ["-v"], { stdio: "ignore" });
      } catch {
        throw new Error(
          "haproxy is missing (Debian: apt-get install -y haproxy), or leave it out of BENCH_MODES",
        );
      }
    }
    const scratch = realpathSync(mkdtempSync(join(tmpdir(), "homeostat-bench-zones-")));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    teardown.add("stop the running contender", async () => {
      await live.stop?.();
    });
    // Teardown runs its steps in reverse: the partition is healed before anything is stopped.
    teardown.add("heal the network partition", async () => {
      await live.partition?.heal();
    });

    const groups: Group[] = [];
    for (const name of options.scenarios) {
      if (options.faults.includes("partition"))
        for (const loadFraction of options.loadFractions)
          groups.push({ name, fault: "partition", loadFraction, modes: options.modes });
      if (options.faults.includes("hook"))
        for (const loadFraction of options.hookLoadFractions)
          groups.push({
            name,
            fault: "hook",
            loadFraction,
            modes: options.modes.filter((m) => m !== "haproxy"),
          });
    }
    const perRound = groups.reduce((n, g) => n + g.modes.length, 0);
    const trialS = Math.round((options.warmupMs + options.outageMs + options.tailMs) / 1000) + 15;
    log(
      `${groups.length} group(s), ${perRound} trial(s) per round, ${options.repeats} round(s): ` +
        `~${trialS} s per trial, ~${Math.round((perRound * options.repeats * trialS) / 60)} min in all`,
    );
    const trials: Trial[] = [];
    for (let repeat = 0; repeat < options.repeats; repeat++) {
      for (const [g, group] of groups.entries()) {
        // Paired: the contenders back to back on the same scenario and load, the order alternated
        // from one round (and one group) to the next so that a drift of the machine favours no one.
        const shift = group.modes.length === 0 ? 0 : (repeat + g) % group.modes.length;
        const order = [...group.modes.slice(shift), ...group.modes.slice(0, shift)];
        for (const [position, mode] of order.entries()) {
          log(
            `round ${repeat + 1}: ${group.name} ${group.fault} ${Math.round(group.loadFraction * 100)} % ${mode.toUpperCase()}…`,
          );
          const trial = await runTrial({
            name: group.name,
            fault: group.fault,
            loadFraction: group.loadFraction,
            mode,
            repeat,
            order: position,
            options,
            scratch,
            ledger,
            live,
            log,
          });
          trials.push(trial);
          log(`    ${describeTrial(trial)}`);
        }
      }
    }

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const configurations: Record<string, string> = {};
    for (const name of options.scenarios) {
      const s = scenario(name);
      for (const mode of options.modes) {
        configurations[`${name} ${mode}`] =
          mode === "haproxy" ? HaproxyFleet.configFor(s) : fleetYaml(s, mode);
      }
    }
    if (options.modes.includes("haproxy")) configurations["haproxy 503.http (errorfile)"] = ERRORFILE_503;
    const keys = groups.flatMap((g) =>
      g.modes.map((mode) => ({ scenario: g.name, fault: g.fault, loadFraction: g.loadFraction, mode })),
    );
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
      configurations,
      invalidTrials: trials.filter((t) => t.ok && t.generator !== null && !t.generator.valid).length,
      failedTrials: trials.filter((t) => !t.ok).length,
      summaries: keys.map((k) => summarizeScenario(k, trials)),
      comparisons: compareWithBaseline(
        trials,
        groups.map((g) => ({ scenario: g.name, fault: g.fault, loadFraction: g.loadFraction })),
        options.modes,
      ),
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
