/**
 * The proxy benchmark (`npm run bench:proxy`): Homeostat's data-plane process (fed over its config
 * feed by the bench, homeostatDataPlane.ts), on its embedded engine and on its `haproxy` engine,
 * next to plain HAProxy with the engine's settings (with and without its log line) and nginx
 * (one worker each) and to no proxy at all, in front of the same single upstream. Max throughput
 * with wrk (closed loop), then latency at a fixed rate (open loop) of half Homeostat's own max.
 * Writes bench/results/proxy-<time>.json and prints a markdown section. Loopback only; every
 * process it starts is stopped, also on Ctrl-C.
 */

import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { haproxyPaths } from "../../src/dataplane/haproxy/haproxyPaths.ts";
import { REPO } from "../../test/helpers/e2e.ts";
import { publishResult, runBench, runTimes } from "../common/benchRun.ts";
import { buildLoadgen } from "../common/loadgen/native.ts";
import { machineInfo } from "../foundation/machine.ts";
import { TRAFFIC_OVERRIDES } from "./benchFleet.ts";
import { codeState } from "./codeState.ts";
import {
  type ContenderName,
  contendersFor,
  FED_CONTENDERS,
  type Running,
  startContender,
  startUpstream,
} from "./contenders.ts";
import { type LatencyRun, latencyRun, type ThroughputRun, throughputRun } from "./measure.ts";
import { readProxyOptions } from "./options.ts";
import { type PairedRound, type PairedSummary, pairedRounds, summarizePairs } from "./paired.ts";
import { renderProxyMarkdown } from "./report.ts";
import { type ProxyBenchResult, summarizeUpstream, type UpstreamSummary } from "./results.ts";
import { log, Teardown } from "./teardown.ts";
import { ensureCommands, toolVersions } from "./tools.ts";
import { wrkArgs } from "./wrk.ts";

/** A run during which processes outside the bench used more than this (% of one core) is redone. */
const OTHERS_LIMIT_PERCENT = 10;
const ATTEMPTS_PER_RUN = 3;

/**
 * Run `measure` until a run is not disturbed by other work on the machine (or the attempts run
 * out: the last one is kept). Disturbed runs go to `discarded`, in the results file.
 */
async function undisturbed<T extends { othersPercent: number }>(
  measure: () => Promise<T>,
  discarded: T[],
  what: string,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const run = await measure();
    if (run.othersPercent <= OTHERS_LIMIT_PERCENT || attempt === ATTEMPTS_PER_RUN) return run;
    log(`  ${what}: other processes used ${run.othersPercent.toFixed(0)} % of a core meanwhile: redoing it`);
    discarded.push(run);
  }
}

/**
 * The contenders' order in repetition `repeat`: rotated, and reversed every other time, so that
 * no contender always runs first (cold machine) or right after the same neighbour.
 */
export function orderFor(repeat: number, contenders: readonly ContenderName[]): ContenderName[] {
  const rotated = [
    ...contenders.slice(repeat % contenders.length),
    ...contenders.slice(0, repeat % contenders.length),
  ];
  return repeat % 2 === 1 ? rotated.reverse() : rotated;
}

/** One GET through `port` must answer 200: a contender that cannot proxy is not measured. */
async function checkServes(name: string, port: number): Promise<void> {
  const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${name} on ${port} answered ${response.status}`);
}

async function main(): Promise<void> {
  const options = readProxyOptions(process.env);
  const contenders = options.contenders ?? contendersFor(options.oldRoot);
  const pairSpecs = options.pairs ?? [];
  // The latency runs' rate: half the max of Homeostat (embedded), else of Homeostat + HAProxy.
  const rateOf: ContenderName = contenders.includes("homeostat") ? "homeostat" : "homeostat-haproxy";
  const startedAt = new Date();
  const dateUtc = execFileSync("date", ["-u"], { encoding: "utf8" }).trim();
  const teardown = new Teardown();
  const { ledger } = teardown;
  try {
    ensureCommands(["haproxy", "nginx", "wrk", "cc"]);
    const machine = machineInfo(REPO);
    const code = codeState(REPO);
    const tools = toolVersions();
    const scratch = mkdtempSync(join(tmpdir(), "homeostat-bench-proxy-"));
    teardown.add("remove the scratch directory", async () =>
      rmSync(scratch, { recursive: true, force: true }),
    );
    const openloop = buildLoadgen(scratch);

    const throughput: ThroughputRun[] = [];
    const latency: LatencyRun[] = [];
    const discardedThroughput: ThroughputRun[] = [];
    const discardedLatency: LatencyRun[] = [];
    const summaries: UpstreamSummary[] = [];
    const paired: PairedRound[] = [];
    const pairedSummaries: PairedSummary[] = [];
    const configs: Record<string, string> = {};
    let homeostatTraffic: unknown = null;

    for (const upstreamKind of options.upstreams) {
      const dir = join(scratch, upstreamKind);
      mkdirSync(dir, { recursive: true });
      log(`upstream ${upstreamKind}: starting it and the contenders…`);
      const upstream = await startUpstream(upstreamKind, dir, ledger, options.placement.others);
      const running = new Map<ContenderName, Running>();
      const stopAll = async () => {
        for (const c of running.values()) await c.stop();
        running.clear();
        await upstream.stop();
      };
      teardown.add(`stop the ${upstreamKind} set`, stopAll);
      for (const name of contenders) {
        const c = await startContender(
          name,
          upstream.port,
          dir,
          ledger,
          options.placement.contender,
          options.oldRoot,
        );
        running.set(name, c);
        await checkServes(name, c.port);
        if (c.config !== null) configs[`${upstreamKind}/${name}`] = readFileSync(c.config, "utf8");
        if (name === "homeostat-haproxy") {
          // What the engine rendered and runs, next to the plain HAProxy rendered by the same code.
          const managed = haproxyPaths(join(dir, name, "state")).config;
          configs[`${upstreamKind}/${name} (managed haproxy.cfg)`] = readFileSync(managed, "utf8");
        }
      }
      if (upstream.config !== null)
        configs[`${upstreamKind}/upstream`] = readFileSync(upstream.config, "utf8");
      const fed = FED_CONTENDERS.find((c) => running.has(c));
      if (homeostatTraffic === null && fed !== undefined) {
        // The snapshot pushed to the data plane (homeostatDataPlane.ts): its one service's settings.
        const snapshot = JSON.parse(readFileSync(running.get(fed)!.config!, "utf8")) as {
          services: { traffic: unknown }[];
        };
        homeostatTraffic = snapshot.services[0]?.traffic ?? null;
      }

      log(`upstream ${upstreamKind}: max throughput, ${options.repeats} × ${contenders.length} runs…`);
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        for (const [position, name] of orderFor(repeat, contenders).entries()) {
          const run = await undisturbed(
            () =>
              throughputRun(
                { upstream: upstreamKind, contender: name, repeat, position },
                running.get(name)!,
                upstream,
                options,
                ledger,
              ),
            discardedThroughput,
            `#${repeat + 1} ${name}`,
          );
          throughput.push(run);
          log(
            `  #${repeat + 1} ${name}: ${Math.round(run.wrk.requestsPerSecond)} req/s (cpu ${Math.round(run.cpu.contender ?? 0)} %, upstream ${Math.round(run.cpu.upstream)} %${run.wrk.non2xx + run.wrk.socketErrors > 0 ? `, ${run.wrk.non2xx} non-2xx, ${run.wrk.socketErrors} socket errors` : ""})`,
          );
        }
      }
      log(
        `upstream ${upstreamKind}: paired ${pairSpecs.map((p) => `${p.subject} ÷ ${p.peer}`).join(", ")}, ${options.pairedRounds} rounds of one ${options.pairedDurationS} s run each, back to back…`,
      );
      const pairs = await pairedRounds(
        upstreamKind,
        running,
        pairSpecs,
        options,
        OTHERS_LIMIT_PERCENT,
        (key, contender, settings, label) =>
          undisturbed(
            () => throughputRun(key, contender, upstream, settings, ledger),
            discardedThroughput,
            label,
          ),
        (pair) =>
          log(
            `  paired #${pair.round + 1} ${pair.subject} ÷ ${pair.peer} (${pair.first} first): ${pair.subject} ${Math.round(pair.homeostat.wrk.requestsPerSecond)} req/s, ${pair.peer} ${Math.round(pair.peerRun.wrk.requestsPerSecond)} req/s: ${pair.rpsRatio === null ? "–" : `${pair.rpsRatio.toFixed(2)}×`}${pair.invalid === null ? "" : ` (not counted: ${pair.invalid})`}`,
          ),
      );
      paired.push(...pairs);
      const upstreamPaired = pairSpecs.map(({ subject, peer }) =>
        summarizePairs(upstreamKind, peer, pairs, options.pairedDurationS, undefined, subject),
      );
      pairedSummaries.push(...upstreamPaired);

      const homeostatMax = summarizeUpstream(upstreamKind, 0, throughput, [], contenders).contenders.find(
        (c) => c.contender === rateOf,
      )!.rps;
      const rate = Math.round(homeostatMax * options.loadFraction);

      log(
        `upstream ${upstreamKind}: latency at ${rate} req/s, ${options.repeats} × ${contenders.length} runs…`,
      );
      for (let repeat = 0; repeat < options.repeats; repeat++) {
        for (const [position, name] of orderFor(repeat, contenders).entries()) {
          const run = await undisturbed(
            () =>
              latencyRun(
                { upstream: upstreamKind, contender: name, repeat, position },
                rate,
                running.get(name)!,
                upstream,
                options,
                scratch,
                ledger,
                openloop,
              ),
            discardedLatency,
            `#${repeat + 1} ${name}`,
          );
          latency.push(run);
          const l = run.result.latency;
          log(
            `  #${repeat + 1} ${name}: p50 ${l?.p50.toFixed(2)} ms, p99 ${l?.p99.toFixed(2)} ms, p99.9 ${l?.p999.toFixed(2)} ms; ${run.result.errors + run.result.non2xx} errors; generator lateness p99 ${run.result.lateness?.p99.toFixed(2)} ms`,
          );
        }
      }
      summaries.push({
        ...summarizeUpstream(upstreamKind, rate, throughput, latency, contenders, upstreamPaired),
        rateOf,
      });
      await stopAll();
    }

    await teardown.run();
    const leftoverPids = ledger.running().map((p) => p.pid);
    const finishedAt = new Date();
    const wrkExample = wrkArgs(
      { threads: options.wrkThreads, connections: options.connections, durationS: options.durationS },
      "http://127.0.0.1:PORT/",
    );
    const result: ProxyBenchResult = {
      benchmark: "proxy",
      ...runTimes(startedAt, finishedAt),
      dateUtc,
      machine: { ...machine, loadAverage1mAtEnd: loadavg()[0] ?? 0 },
      code,
      tools,
      options,
      commands: {
        wrk: `wrk ${wrkExample.join(" ")}`,
        openLoop: `bench/common/loadgen/openloop.c (native open loop, keep-alive, up to ${options.openLoopConnections} connections, ${options.latencyWarmupS} s warm-up then ${options.durationS} s measured, GET /)`,
        configs,
      },
      contenders,
      homeostatTraffic: homeostatTraffic ?? TRAFFIC_OVERRIDES,
      throughput,
      latency,
      discarded: {
        othersLimitPercent: OTHERS_LIMIT_PERCENT,
        throughput: discardedThroughput,
        latency: discardedLatency,
      },
      summaries,
      paired,
      pairedSummaries,
      leftoverPids,
    };
    publishResult("proxy", startedAt, result, renderProxyMarkdown, log, leftoverPids.length === 0);
  } finally {
    await teardown.run();
  }
}

await runBench(main, log);
