/**
 * The rollback benchmark (`npm run bench:rollback`): steady load on the example fleet's checkout
 * service while a failing release (`v2-errors`, 30 % errors) is deployed — how fast the automatic
 * rollback takes traffic off it and how many errors clients see meanwhile, over BENCH_TRIALS fresh
 * controllers — then one clean deploy of `v3-migrates` (an irreversible migration) followed by
 * `plan rollback`, which must refuse. Writes bench/results/rollback-<time>.json (and the plan as
 * rollback-plan-<time>.json) and prints markdown. Loopback only; every process it starts is
 * stopped, also on Ctrl-C.
 */

import { mkdirSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fleetOrThrow, loadFleetFile } from "../../src/spec/index.ts";
import { processesUnder, REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes, saveResult } from "../common/benchRun.ts";
import { Teardown } from "../common/teardown.ts";
import { machineInfo } from "../foundation/machine.ts";
import { type CanaryTrial, canaryTrial } from "./canaryTrial.ts";
import type { ControllerRun } from "./controllerRun.ts";
import { busyPorts, copyFleet, fleetPorts } from "./fleetCopy.ts";
import { type MigrationScenario, migrationScenario } from "./migrationScenario.ts";
import { readOptions } from "./options.ts";
import { renderMarkdown } from "./report.ts";
import { type RollbackBenchResult, summarizeCanary } from "./results.ts";
import { scenarioFacts } from "./scenario.ts";

const FLEET_FILE = join(REPO, "examples/shop/fleet.yaml");

function log(message: string): void {
  process.stderr.write(`[bench:rollback] ${message}\n`);
}

function killUnder(dir: string): number[] {
  const killed: number[] = [];
  for (const pid of processesUnder(dir)) {
    try {
      process.kill(pid, "SIGKILL");
      killed.push(pid);
    } catch {
      // already gone
    }
  }
  return killed;
}

async function main(): Promise<void> {
  const options = readOptions(process.env);
  const startedAt = new Date();
  const machine = machineInfo(REPO);
  const teardown = new Teardown(log);
  const { ledger } = teardown;
  let current: ControllerRun | null = null;
  const track = (run: ControllerRun | null) => {
    current = run;
  };

  try {
    const source = fleetOrThrow(await loadFleetFile(FLEET_FILE));
    const busy = await busyPorts(fleetPorts(source));
    if (busy.length > 0) {
      throw new Error(
        `ports ${busy.join(", ")} of ${FLEET_FILE} are in use (is \`npm start\` or another bench running?); ` +
          "the bench runs the example fleet on its own fixed ports: stop what holds them and retry",
      );
    }
    const scratch = realpathSync(mkdtempSync(join(tmpdir(), "homeostat-bench-rollback-")));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    teardown.add("SIGKILL anything still running in the scratch directory", async () => {
      const killed = killUnder(scratch);
      if (killed.length > 0) log(`SIGKILLed leftover instances ${killed.join(", ")}`);
    });
    teardown.add("stop the running controller", async () => {
      const run = current as ControllerRun | null;
      if (run !== null) await run.stop();
    });
    const fleetDir = join(scratch, "fleet");
    mkdirSync(fleetDir);
    const { file: fleetFile, fleet } = await copyFleet(FLEET_FILE, fleetDir);
    const facts = scenarioFacts(fleet);
    log(
      `fleet copied to ${fleetFile}; ${options.trials} failing-canary trials at ${options.ratePerSecond} req/s`,
    );

    const trials: CanaryTrial[] = [];
    for (let trial = 1; trial <= options.trials; trial++) {
      const t = await canaryTrial({
        trial,
        fleetFile,
        fleet,
        facts,
        scratch,
        ledger,
        bench: options,
        onController: track,
      });
      trials.push(t);
      const f = t.figures;
      log(
        `  #${trial}: ${t.ok ? "ok" : `FAILED ${t.error}`}` +
          (t.load !== undefined && !t.load.valid ? ` — INVALID (${t.load.invalidReason})` : "") +
          (f
            ? ` — verdict ${Math.round(f.durations.deployToVerdict)} ms after deploy; last canary send ${f.rollback.lastCanarySendMs?.toFixed(1)} ms after it; ` +
              `${f.errors.deployToVerdict.failed} non-200 of ${f.errors.deployToVerdict.requests} (${((f.errors.deployToVerdict.failedShare ?? 0) * 100).toFixed(2)} %)`
            : ""),
      );
    }

    let migration: { attempts: MigrationScenario[] } | null = null;
    let planFile: string | null = null;
    if (options.migrationScenario) {
      migration = { attempts: [] };
      for (let attempt = 1; attempt <= options.migrationAttempts; attempt++) {
        log(`migration scenario, attempt ${attempt}: deploy v3-migrates, then plan rollback…`);
        const m = await migrationScenario({
          attempt,
          fleetFile,
          fleet,
          facts,
          scratch,
          ledger,
          bench: options,
          onController: track,
          log,
        });
        migration.attempts.push(m);
        log(`  ${m.ok ? "ok" : `PROBLEMS: ${m.error ?? m.problems.join("; ")}`}`);
        if (m.ok) break;
      }
    }

    await teardown.run();
    const leftoverPids = [...ledger.running().map((p) => p.pid)];
    const finishedAt = new Date();
    const planned = migration?.attempts.findLast((m) => m.plan !== undefined);
    if (planned?.plan !== undefined) {
      planFile = saveResult("rollback-plan", startedAt, planned.plan);
    }
    const result: RollbackBenchResult = {
      benchmark: "rollback",
      command: [
        ...Object.entries(process.env)
          .filter(([name]) => name.startsWith("BENCH_"))
          .map(([name, value]) => `${name}=${value}`),
        "npm run bench:rollback",
      ].join(" "),
      ...runTimes(startedAt, finishedAt),
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      options,
      fleet: { source: FLEET_FILE, copy: fleetFile },
      scenario: facts,
      canary: { summary: summarizeCanary(trials, facts), trials },
      migration,
      planFile,
      leftoverPids,
    };
    const allOk = trials.every((t) => t.ok) && (migration === null || migration.attempts.some((m) => m.ok));
    publishResult("rollback", startedAt, result, renderMarkdown, log, allOk && leftoverPids.length === 0);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
