/**
 * The failover bench's hung-instance trials (issue 14): one of three instances SIGSTOPped for 8 s
 * under 1,000 req/s of open-loop load, through Homeostat + HAProxy (a controller whose service is
 * on the `haproxy` engine) and through plain HAProxy with checks tuned to Homeostat's readiness
 * probe (this bench's `haproxy-tuned`). The load, the fault and the figures are the data-plane
 * bench's hung scenario (bench/dataplane: 50 connections, 5 s client timeout, `GET /work?ms=5`,
 * 2 s warm-up, 3 s before the hang, 5 s after it), so the two benches' figures read alike.
 *
 * Targets: Homeostat + HAProxy serves at least as many requests as HAProxy tuned (paired by round),
 * and Homeostat's probes take the hung server out of the managed HAProxy within the liveness
 * probe's bound (`interval × failureThreshold + timeout`): the time is read from HAProxy itself,
 * polling its admin socket (`show stat`) every 10 ms from the SIGSTOP until the victim's server is
 * no longer ready (MAINT, DRAIN or DOWN, or weight 0).
 */

import { haproxyPaths } from "../../src/dataplane/haproxy/haproxyPaths.ts";
import type { ProbeSpec } from "../../src/spec/index.ts";
import { fleetOrThrow, loadFleetFile } from "../../src/spec/index.ts";
import { positiveInt, positiveNumber } from "../common/envOptions.ts";
import type { RunFigures, Window } from "../dataplane/analysis.ts";
import { type DataPlaneOptions, readDataPlaneOptions } from "../dataplane/options.ts";
import { type GeneratorCheck, loadWithFault } from "../dataplane/trial.ts";
import { type Hangs, waitServedByAll } from "../dataplane/upstreams.ts";
import { identify, type ProcessIdentity, type ProcessLedger } from "../foundation/processes.ts";
import { type RatioSpread, ratioSpread } from "../proxy/paired.ts";
import type { QuietReading } from "../proxy/quiet.ts";
import { pairedRatio } from "../proxy/report.ts";
import { log } from "../proxy/teardown.ts";
import { type BenchInstances, epochNow, type HaproxyUnderTest, haproxyShowStat } from "./haproxyFleet.ts";
import { type HomeostatFleet, REPLICAS, readyVictim } from "./homeostatFleet.ts";

export const HUNG_SCENARIOS = ["homeostat-haproxy", "haproxy-tuned"] as const;
export type HungScenario = (typeof HUNG_SCENARIOS)[number];

/** The hung trials' settings: the data-plane bench's, but the rate and trial count of their own. */
export type HungSettings = Pick<
  DataPlaneOptions,
  | "rate"
  | "connections"
  | "clientTimeoutMs"
  | "path"
  | "warmupMs"
  | "beforeFaultMs"
  | "hangMs"
  | "afterHangMs"
> & { trials: number };

/** `BENCH_HUNG_RATE` (1,000 req/s), `BENCH_HUNG_TRIALS` (3), the rest from the data-plane bench. */
export function readHungSettings(env: NodeJS.ProcessEnv): HungSettings {
  const d = readDataPlaneOptions({});
  return {
    rate: positiveNumber(env, "BENCH_HUNG_RATE", 1_000),
    connections: d.connections,
    clientTimeoutMs: d.clientTimeoutMs,
    path: d.path,
    warmupMs: d.warmupMs,
    beforeFaultMs: d.beforeFaultMs,
    hangMs: positiveNumber(env, "BENCH_HANG_SECONDS", 8, false) * 1000,
    afterHangMs: d.afterHangMs,
    trials: positiveInt(env, "BENCH_HUNG_TRIALS", 3),
  };
}

export interface HungFailoverTrial {
  scenario: HungScenario;
  /** 0-based round: the two scenarios' trials of a round ran back to back. */
  repeat: number;
  victim: string;
  ok: boolean;
  error?: string;
  before: QuietReading | null;
  /** The hang, ms from the generator's t0. */
  fault: Window | null;
  figures: RunFigures | null;
  generator: GeneratorCheck | null;
  /** Homeostat + HAProxy: SIGSTOP → the managed HAProxy's server for the victim not ready, ms. */
  takenOutMs: number | null;
  /** …and how HAProxy showed it (`show stat` status and weight). */
  takenOutAs: string | null;
  /** HAProxy tuned: SIGSTOP → HAProxy's own DOWN, ms (with its reason). */
  markedDownMs: number | null;
  markedDownReason: string | null;
  /** Whether the SIGCONT found the victim still there (Homeostat's liveness probe may replace it). */
  victimContinued: boolean | null;
}

export interface HungResult {
  settings: HungSettings;
  /** The fleet's probes, and their bounds (`interval × failureThreshold + timeout`), ms. */
  probes: {
    readiness: ProbeSpec | null;
    liveness: ProbeSpec | null;
    readinessBoundMs: number | null;
    livenessBoundMs: number | null;
  };
  trials: HungFailoverTrial[];
  /** Homeostat + HAProxy served ÷ HAProxy tuned served, paired by round (valid rounds only). */
  servedRatio: RatioSpread | null;
  targets: {
    /** In every round, Homeostat + HAProxy served at least as many as HAProxy tuned (null: no round). */
    servedAtLeastTuned: boolean | null;
    /** Every Homeostat + HAProxy trial: taken out within the liveness bound (null: none ran). */
    takenOutWithinLiveness: boolean | null;
  };
}

/** `interval × failureThreshold + timeout` of a probe, or null. */
export function probeBoundMs(probe: ProbeSpec | null | undefined): number | null {
  return probe == null ? null : probe.intervalMs * probe.failureThreshold + probe.timeoutMs;
}

/** A trial counts when it ran and its generator kept its schedule before the fault. */
function counts(t: HungFailoverTrial): boolean {
  return t.ok && t.figures !== null && t.generator?.valid !== false;
}

/** The result's derived figures from its trials. */
export function summarizeHung(
  settings: HungSettings,
  probes: HungResult["probes"],
  trials: HungFailoverTrial[],
): HungResult {
  const rounds = [...new Set(trials.map((t) => t.repeat))];
  const ratios: number[] = [];
  let atLeast: boolean | null = null;
  for (const round of rounds) {
    const h = trials.find((t) => t.repeat === round && t.scenario === "homeostat-haproxy");
    const p = trials.find((t) => t.repeat === round && t.scenario === "haproxy-tuned");
    if (h === undefined || p === undefined || !counts(h) || !counts(p)) continue;
    const served = [h.figures!.served, p.figures!.served];
    if (served[1]! > 0) ratios.push(served[0]! / served[1]!);
    atLeast = (atLeast ?? true) && served[0]! >= served[1]!;
  }
  const mine = trials.filter((t) => t.scenario === "homeostat-haproxy" && t.ok);
  const bound = probes.livenessBoundMs;
  return {
    settings,
    probes,
    trials,
    servedRatio: ratioSpread(ratios, 1),
    targets: {
      servedAtLeastTuned: atLeast,
      takenOutWithinLiveness:
        mine.length === 0 || bound === null
          ? null
          : mine.every((t) => t.takenOutMs !== null && t.takenOutMs <= bound),
    },
  };
}

/** One row of `show stat` for a server: name, status, weight, address. */
interface ServerStat {
  server: string;
  status: string;
  weight: number;
  addr: string | null;
}

/** The servers of backend `backend` in `show stat` CSV. */
export function serverStats(csv: string, backend: string): ServerStat[] {
  const [header, ...rows] = csv.trim().split("\n");
  const columns = (header ?? "").replace(/^# /, "").split(",");
  const at = (name: string) => columns.indexOf(name);
  const out: ServerStat[] = [];
  for (const row of rows) {
    const cells = row.split(",");
    if (cells[0] !== backend || cells[at("svname")] === "BACKEND" || cells[at("svname")] === "FRONTEND")
      continue;
    out.push({
      server: cells[at("svname")]!,
      status: cells[at("status")] ?? "",
      weight: Number(cells[at("weight")] ?? Number.NaN),
      addr: at("addr") >= 0 ? (cells[at("addr")] ?? null) : null,
    });
  }
  return out;
}

/** Not taking requests: held out by Homeostat (MAINT, DRAIN), or DOWN, or weight 0. */
export function notReady(s: ServerStat): boolean {
  return /MAINT|DRAIN|DOWN/.test(s.status) || s.weight === 0;
}

/**
 * From `since` (epoch ms), poll the managed HAProxy every 10 ms for up to `forMs` until the server
 * at `127.0.0.1:port` (or named `name`) is not ready; resolves with when and how, or nulls.
 */
async function watchTakenOut(
  socket: string,
  backend: string,
  victim: { name: string; port: number },
  since: number,
  forMs: number,
): Promise<{ ms: number | null; as: string | null }> {
  while (epochNow() - since < forMs) {
    const stats = await haproxyShowStat(socket)
      .then((csv) => serverStats(csv, backend))
      .catch(() => [] as ServerStat[]);
    const s =
      stats.find((x) => x.addr === `127.0.0.1:${victim.port}`) ?? stats.find((x) => x.server === victim.name);
    if (s !== undefined && notReady(s)) {
      return { ms: Math.round(epochNow() - since), as: `${s.server} ${s.status}, weight ${s.weight}` };
    }
    // Polling HAProxy's state: the point is to let a short time pass between two reads.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { ms: null, as: null };
}

/** Everything one round needs: the two contenders, already running. */
export interface HungContenders {
  fleet: HomeostatFleet | null;
  service: string;
  haproxy: HaproxyUnderTest | null;
  instances: BenchInstances;
  binary: string;
  scratch: string;
  ledger: ProcessLedger;
  hangs: Hangs;
}

/** The fleet file's readiness and liveness probes, with their bounds. */
export async function fleetProbes(fleetFile: string): Promise<HungResult["probes"]> {
  const probes = fleetOrThrow(await loadFleetFile(fleetFile)).services[0]!.probes;
  return {
    readiness: probes.readiness ?? null,
    liveness: probes.liveness ?? null,
    readinessBoundMs: probeBoundMs(probes.readiness),
    livenessBoundMs: probeBoundMs(probes.liveness),
  };
}

/** `settings.trials` rounds of one hung trial per scenario, the order alternating by round. */
export async function hungTrials(c: HungContenders, settings: HungSettings): Promise<HungFailoverTrial[]> {
  const bench = { ...readDataPlaneOptions({}), ...settings } satisfies DataPlaneOptions;
  const scenarios = HUNG_SCENARIOS.filter((s) =>
    s === "homeostat-haproxy" ? c.fleet !== null : c.haproxy !== null,
  );
  const trials: HungFailoverTrial[] = [];
  for (let repeat = 0; repeat < settings.trials; repeat++) {
    const k = repeat % REPLICAS;
    const order = repeat % 2 === 0 ? scenarios : [...scenarios].reverse();
    for (const scenario of order) {
      const trial: HungFailoverTrial = {
        scenario,
        repeat,
        victim: `api-${k}`,
        ok: false,
        before: null,
        fault: null,
        figures: null,
        generator: null,
        takenOutMs: null,
        takenOutAs: null,
        markedDownMs: null,
        markedDownReason: null,
        victimContinued: null,
      };
      try {
        let port: number;
        let victim: ProcessIdentity;
        let victimPort: number;
        if (scenario === "homeostat-haproxy") {
          const fleet = c.fleet!;
          fleet.homeostat.assertRunning();
          const status = await readyVictim(fleet.homeostat, trial.victim);
          victim = identify(status.pid!);
          victimPort = status.port;
          port = fleet.port;
        } else {
          await c.instances.ensureAll();
          await c.haproxy!.waitAllUp(c.instances.ports.map((_, j) => c.instances.name(j)));
          victim = c.instances.identity(k);
          victimPort = c.instances.ports[k]!;
          port = c.haproxy!.port;
        }
        await waitServedByAll(
          port,
          Array.from({ length: REPLICAS }, (_, j) => `api-${j}`),
        );
        const adminSocket =
          scenario === "homeostat-haproxy" ? haproxyPaths(c.fleet!.homeostat.stateDir).adminSocket : null;
        let stoppedAt = 0;
        let watched: Promise<{ ms: number | null; as: string | null }> | null = null;
        const loaded = await loadWithFault({
          port,
          bench,
          afterFaultStartMs: settings.hangMs + settings.afterHangMs,
          binary: c.binary,
          scratch: c.scratch,
          ledger: c.ledger,
          fault: async () => {
            const hang = c.hangs.hang(victim, settings.hangMs);
            stoppedAt = epochNow();
            if (adminSocket !== null) {
              watched = watchTakenOut(
                adminSocket,
                c.service,
                { name: trial.victim, port: victimPort },
                stoppedAt,
                settings.hangMs,
              );
            }
            const done = await hang;
            stoppedAt = done.stoppedAt;
            trial.victimContinued = done.continued;
            return { fromEpochMs: done.stoppedAt, toEpochMs: done.continuedAt };
          },
        });
        Object.assign(trial, {
          before: loaded.before,
          fault: loaded.fault,
          figures: loaded.figures,
          generator: loaded.generator,
          ok: true,
        });
        if (watched !== null) {
          const out = await (watched as Promise<{ ms: number | null; as: string | null }>);
          trial.takenOutMs = out.ms;
          trial.takenOutAs = out.as;
        } else if (c.haproxy !== null) {
          const down = c.haproxy.downEvent(trial.victim, stoppedAt);
          trial.markedDownMs = down === null ? null : Math.round(down.at - stoppedAt);
          trial.markedDownReason = down?.reason ?? null;
        }
      } catch (error) {
        trial.error = error instanceof Error ? error.message : String(error);
        c.hangs.continueAll();
      } finally {
        if (scenario === "haproxy-tuned") await c.instances.ensureAll();
      }
      trials.push(trial);
      const f = trial.figures;
      log(
        `  hung #${repeat + 1} ${scenario}, ${trial.victim} stopped ${settings.hangMs / 1000} s: ${
          trial.ok && f !== null
            ? `${f.served}/${f.requests} served (${f.servedPercent.toFixed(2)} %), failed ${f.failed}; p99 ${f.latency?.p99.toFixed(0)} ms; generator lag p99 ${f.lateness?.p99.toFixed(1)} ms${trial.generator?.valid === false ? ` (NOT COUNTED: ${trial.generator.invalidReason})` : ""}; ${scenario === "homeostat-haproxy" ? `taken out ${trial.takenOutMs === null ? "not seen" : `${trial.takenOutMs} ms`} (${trial.takenOutAs ?? "–"})` : `DOWN ${trial.markedDownMs === null ? "not seen" : `${trial.markedDownMs} ms`} (${trial.markedDownReason ?? "–"})`}`
            : `FAILED ${trial.error}`
        }`,
      );
    }
  }
  return trials;
}

function ms(v: number | null | undefined, digits = 0): string {
  return v == null || Number.isNaN(v) ? "–" : `${v.toFixed(digits)} ms`;
}

/** The hung trials' section of the failover report. */
export function renderHungMarkdown(h: HungResult): string[] {
  const s = h.settings;
  const p = h.probes;
  const label = (x: HungScenario) =>
    x === "homeostat-haproxy" ? "**Homeostat + HAProxy**" : "HAProxy, tuned checks (probe only)";
  const yes = (v: boolean | null) => (v === null ? "**not judged**" : v ? "**met**" : "**missed**");
  return [
    "#### One instance hung (SIGSTOP) under load",
    "",
    `Load: open loop, ${s.rate} req/s of \`GET ${s.path}\` over ${s.connections} connections (the data-plane bench's generator settings; client timeout ${s.clientTimeoutMs / 1000} s from the due time), ${s.warmupMs / 1000} s warm-up (not counted), ${s.beforeFaultMs / 1000} s before the hang, one instance SIGSTOPped for ${s.hangMs / 1000} s, ${s.afterHangMs / 1000} s after the SIGCONT. ${s.trials} rounds, one trial per contender each, back to back, the order alternating. Homeostat's probes: readiness ${p.readiness === null ? "–" : `every ${p.readiness.intervalMs} ms, timeout ${p.readiness.timeoutMs} ms, ${p.readiness.failureThreshold} failures`} (bound ${ms(p.readinessBoundMs)}), liveness ${p.liveness === null ? "–" : `every ${p.liveness.intervalMs} ms, timeout ${p.liveness.timeoutMs} ms, ${p.liveness.failureThreshold} failures`} (bound ${ms(p.livenessBoundMs)}). "Taken out": polled from the managed HAProxy's admin socket (\`show stat\`, every 10 ms) from the SIGSTOP until the victim's server was not ready.`,
    "",
    "| Contender | Round | Hung | Served / requests | Failed (by kind) | p99 / max latency from due time | Generator lag p99 (before the hang) | Hung → out of rotation |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ...h.trials.map((t) => {
      const f = t.figures;
      const kinds =
        f === null
          ? ""
          : Object.entries(f.failures)
              .map(([k, n]) => `${k} ${n}`)
              .join(", ");
      const out =
        t.scenario === "homeostat-haproxy"
          ? `${t.takenOutMs === null ? "not seen" : ms(t.takenOutMs)} (${t.takenOutAs ?? "–"})`
          : `HAProxy's DOWN: ${t.markedDownMs === null ? "not seen" : ms(t.markedDownMs)} (${t.markedDownReason ?? "–"})`;
      return t.ok && f !== null
        ? `| ${label(t.scenario)} | ${t.repeat + 1} | ${t.victim} | ${f.served} / ${f.requests} (${f.servedPercent.toFixed(2)} %) | ${f.failed}${kinds ? ` (${kinds})` : ""} | ${ms(f.latency?.p99)} / ${ms(f.latency?.max)} | ${ms(t.generator?.latenessP99Ms, 2)}${t.generator?.valid === false ? ` (not counted: ${t.generator.invalidReason})` : ""} | ${out} |`
        : `| ${label(t.scenario)} | ${t.repeat + 1} | ${t.victim} | FAILED: ${t.error ?? "?"} | – | – | – | – |`;
    }),
    "",
    `Targets: Homeostat + HAProxy served at least as many requests as HAProxy tuned in every round: ${yes(h.targets.servedAtLeastTuned)} (served ratio, paired by round: ${pairedRatio(h.servedRatio, h.servedRatio?.n ?? 0, s.trials).replace(/pairs/g, "rounds")}). Homeostat's probes took the hung server out within the liveness bound (${ms(p.livenessBoundMs)}) in every trial: ${yes(h.targets.takenOutWithinLiveness)}.`,
    "",
  ];
}
