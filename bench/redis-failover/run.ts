/**
 * The Redis failover benchmark (`npm run bench:redis-failover`, issue 16): kill -9 of the primary,
 * and SIGSTOP of the primary for 10 s, under a client writing sequence-numbered keys every 2 ms;
 * time until writes succeed again, acknowledged writes lost, writes acknowledged by the old
 * primary after the failover — for Homeostat (through its endpoint and through its
 * Sentinel-compatible port) and for Redis Sentinel (3 Sentinels, `down-after-milliseconds` equal
 * to Homeostat's detection budget), in one run, trials interleaved (each round runs every
 * contender under each fault, the order rotating). Writes bench/results/redis-failover-<time>.json
 * (every write's record beside it in redis-failover-<time>-records/) and prints the markdown.
 *
 * Everything runs on free loopback ports in a temp dir, never on 6379; every process it started
 * is stopped at the end, also on failure and Ctrl-C.
 */

import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { STORE_DEFAULTS } from "../../src/spec/stores.ts";
import { REPO } from "../../test/helpers/e2e.ts";
import { publishResult, RESULTS_DIR, resultStamp, runBench, runTimes } from "../common/benchRun.ts";
import { machineInfo } from "../foundation/machine.ts";
import { codeState } from "../proxy/codeState.ts";
import { log, Teardown } from "../proxy/teardown.ts";
import { ISSUE_TARGETS, type SummaryTrial, summarizeCell } from "./analysis.ts";
import type { Contender, StoreSettings } from "./contender.ts";
import { HomeostatContender, HomeostatStore } from "./homeostatContender.ts";
import { type ContenderName, readRedisFailoverOptions } from "./options.ts";
import { boostAll, descendantsOf } from "./priority.ts";
import { REDIS_SERVER } from "./redisNodes.ts";
import { labelOf, type RedisFailoverResult, renderRedisFailoverMarkdown } from "./report.ts";
import { SentinelContender } from "./sentinelContender.ts";
import { runTrial, type TrialResult } from "./trial.ts";

/** Homeostat's store defaults: what both contenders run with. */
function storeSettings(minReplicasToWrite: number | null): StoreSettings {
  const d = STORE_DEFAULTS.detection;
  return {
    detection: { ...d },
    detectionBudgetMs: d.intervalMs * d.failures + d.timeoutMs,
    minReplicasToWrite: minReplicasToWrite ?? STORE_DEFAULTS.minReplicasToWrite,
    minReplicasMaxLagS: STORE_DEFAULTS.minReplicasMaxLagS,
    persistence: STORE_DEFAULTS.persistence,
  };
}

/** redis-server must be there; as root the bench installs Debian's package, as `.ci/run` does. */
function ensureRedis(): string {
  if (!existsSync(REDIS_SERVER)) {
    if (process.getuid?.() !== 0) throw new Error(`${REDIS_SERVER} is missing: apt-get install redis-server`);
    log("installing redis-server (apt-get)…");
    try {
      execFileSync("apt-get", ["install", "-y", "redis-server"], { stdio: "ignore" });
    } catch {
      execFileSync("apt-get", ["update"], { stdio: "ignore" });
      execFileSync("apt-get", ["install", "-y", "redis-server"], { stdio: "ignore" });
    }
  }
  const version = execFileSync(REDIS_SERVER, ["--version"], { encoding: "utf8" });
  return /v=(\S+)/.exec(version)?.[1] ?? version.trim();
}

function ioredisVersion(): string {
  const pkg = JSON.parse(readFileSync(join(REPO, "node_modules/ioredis/package.json"), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

async function main(): Promise<void> {
  const options = readRedisFailoverOptions(process.env);
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const teardown = new Teardown();
  const { ledger } = teardown;
  try {
    const redisVersion = ensureRedis();
    const machine = machineInfo(REPO);
    const code = codeState(REPO);
    const scratch = mkdtempSync(join(tmpdir(), "homeostat-bench-redis-failover-"));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    const store = storeSettings(options.minReplicasToWrite);
    const notMeasured: RedisFailoverResult["notMeasured"] = [];
    const contenders = new Map<ContenderName, Contender>();

    let sentinel: SentinelContender | null = null;
    if (options.contenders.includes("sentinel")) {
      log("starting Redis Sentinel: a primary, 2 replicas and 3 Sentinels…");
      sentinel = await SentinelContender.start(
        join(scratch, "sentinel"),
        store,
        options.sentinelFailoverTimeoutMs,
        ledger,
      );
      const started = sentinel;
      teardown.add("stop the Sentinel contender", () => started.stop());
      contenders.set("sentinel", sentinel);
    }
    let homeostat: HomeostatStore | null = null;
    const homeostatWays = options.contenders.filter((c) => c !== "sentinel");
    if (homeostatWays.length > 0) {
      log("starting Homeostat with a Redis store (a primary and 2 replicas)…");
      const dir = join(scratch, "homeostat");
      mkdirSync(dir, { recursive: true });
      try {
        homeostat = await HomeostatStore.start(dir, store, options.homeostatAnnounce, ledger);
        const started = homeostat;
        teardown.add("homeostat down", () => started.homeostat.stop());
        await homeostat.ready(90_000);
        for (const way of homeostatWays)
          contenders.set(
            way,
            new HomeostatContender(started, way === "homeostat-endpoint" ? "endpoint" : "sentinel"),
          );
      } catch (error) {
        const reason = error instanceof Error ? error.message.split("\n")[0]! : String(error);
        log(`Homeostat's store could not be started: ${reason}`);
        if (homeostat !== null) log(homeostat.homeostat.output().split("\n").slice(-20).join("\n"));
        for (const way of homeostatWays) notMeasured.push({ contender: way, reason });
      }
    }

    if (options.nice !== null) {
      const boosted = boostAll(options.nice);
      if (boosted === null) {
        log("could not raise priorities (not root): running at the machine's default");
        options.nice = null;
      } else {
        const names = descendantsOf(process.pid).map((pid) => {
          try {
            return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
          } catch {
            return "?";
          }
        });
        const counts = new Map<string, number>();
        for (const n of names) counts.set(n, (counts.get(n) ?? 0) + 1);
        log(
          `nice ${options.nice} for ${boosted} processes: ${[...counts].map(([n, c]) => `${c}× ${n}`).join(", ")}`,
        );
      }
    }
    const runId = resultStamp(startedAt);
    const recordsDir = join(RESULTS_DIR, `redis-failover-${runId}-records`);
    mkdirSync(recordsDir, { recursive: true });
    const order = [...contenders.keys()];
    const trials: TrialResult[] = [];
    for (let round = 0; round < options.trials; round++) {
      for (const fault of options.faults) {
        const shift = round % Math.max(1, order.length);
        for (const name of [...order.slice(shift), ...order.slice(0, shift)]) {
          const contender = contenders.get(name)!;
          log(`#${round + 1} ${labelOf(name)}: ${fault === "kill" ? "kill -9" : "SIGSTOP"} of the primary…`);
          const trial = await runTrial({
            contender,
            fault,
            round,
            runId,
            recordsDir,
            bench: options,
            ledger,
            log,
          });
          trials.push(trial);
          const f = trial.figures;
          log(
            f === null
              ? `  FAILED: ${trial.error}`
              : `  writable again ${f.writableAgainMs === null ? "never" : `${Math.round(f.writableAgainMs)} ms`}, promoted ${f.promotedPort ?? "none"} at ${f.promotedAfterMs === null ? "–" : Math.round(f.promotedAfterMs)} ms, ${f.failed} failed, ${f.ackedLost ?? "?"} acked lost (best replica missed ${f.bestReplicaMissing ?? "?"}), old primary acked ${f.ackedByOldAfterFault} after the fault / ${f.ackedByOldAfterFailover} after the failover, fenced ${f.oldPrimaryFencedAfterResumeMs === null ? "–" : Math.round(f.oldPrimaryFencedAfterResumeMs)} ms after return; p99 lateness ${f.lateness.p99BeforeFault.toFixed(1)} ms before the fault, ${f.lateness.p99.toFixed(1)} ms overall; ${
                  trial.valid
                    ? "valid"
                    : `INVALID: ${trial.validity
                        .filter((c) => c.ok !== true)
                        .map((c) => c.detail)
                        .join("; ")}`
                }`,
          );
        }
      }
    }

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const summaryTrials: SummaryTrial[] = trials.map((t) => ({
      contender: t.contender,
      fault: t.fault,
      round: t.round,
      valid: t.valid,
      figures: t.figures,
      targets: t.targets,
    }));
    const summaries = order.flatMap((name) =>
      options.faults.map((fault) => summarizeCell(name, fault, summaryTrials, ISSUE_TARGETS)),
    );
    const result: RedisFailoverResult = {
      benchmark: "redis-failover",
      ...runTimes(startedAt, finishedAt),
      dateUtc,
      command: "npm run bench:redis-failover",
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      code,
      redisVersion,
      ioredisVersion: ioredisVersion(),
      options,
      store,
      sentinel: sentinel === null ? null : { settings: sentinel.settings, configs: sentinel.configs },
      homeostat: homeostat === null ? null : { fleetYaml: homeostat.fleetYaml },
      notMeasured,
      trials,
      summaries,
      targets: ISSUE_TARGETS,
      leftoverPids,
    };
    const ok = leftoverPids.length === 0 && trials.every((t) => t.ran);
    publishResult("redis-failover", startedAt, result, renderRedisFailoverMarkdown, log, ok);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
