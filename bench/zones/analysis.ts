/**
 * From one trial's raw material — every request's outcome, the per-second instance counters, the
 * balancer's events — the figures issues 5 and 11 ask for: failed requests by criticality (and in
 * the warm-up), latency from each request's due time, survivors' utilization and how long any of
 * them stayed above the ceiling, when traffic left the failed zone, when added capacity was ready,
 * whether the load generator kept up, and each trial's own pass/fail checks. Then, over trials,
 * the paired comparison with the baseline (HAProxy): per round, contender ÷ baseline, and the
 * median of those ratios. Times are ms from the fault unless said otherwise. Pure: no I/O.
 */

import type { Criticality } from "../../src/traffic/contracts.ts";
import { type Summary, summarize } from "../foundation/stats.ts";
import type { Scenario } from "./fleet.ts";
import type { LoadRecord, LoadResult, Outcome } from "./load.ts";
import type { Sample } from "./sampler.ts";

export const CRITICALITIES: readonly Criticality[] = ["critical", "default", "sheddable"];
export type Phase = "before" | "outage" | "after";

export interface OutcomeCounts {
  sent: number;
  ok: number;
  failed: number;
  /** Failed, by cause. */
  shed: number;
  http5xx: number;
  timeout: number;
  connectionError: number;
  other: number;
  /** 503 sheds by `x-homeostat-shed` reason. */
  shedReasons: Record<string, number>;
  /** Connection errors by code, and other failures by status. */
  errors: Record<string, number>;
  /** failed / sent (null when nothing was sent). */
  failedShare: number | null;
  /** Latency of the successful requests, from each request's due time (not its send), ms. */
  okP50Ms: number | null;
  okP99Ms: number | null;
}

/** Whether the load generator offered the load the trial says it did. */
export interface GeneratorHealth {
  offeredRatePerSecond: number;
  achievedRatePerSecond: number | null;
  /** written − due, over every request, ms. */
  latenessP99Ms: number | null;
  maxLatenessMs: number | null;
  /** False (the generator's own verdict): it fell behind; the trial is counted and left out of every summary. */
  valid: boolean;
  invalidReason: string | null;
}

/** One instance over one sampling interval (about a second). */
export interface InstanceSecond {
  instance: string;
  zone: string;
  /** Interval end, ms from the fault. */
  end: number;
  durationMs: number;
  /** Share of the slot time spent working (0..1): the instance's real utilization. */
  utilization: number;
  /** Requests that arrived per second ÷ capacity: can exceed 1 (the excess queues). */
  offered: number;
  servedPerSecond: number;
  queuedAtEnd: number;
}

export interface TrialFigures {
  /** Epoch ms of the fault (the rule's creation time) and of its removal. */
  faultAt: number;
  clearedAt: number;
  /** Per phase and criticality; `outage` is fault → cleared, `after` the tail. */
  requests: Record<Phase, Record<Criticality, OutcomeCounts>>;
  /** From the fault to the end of the run, per criticality. */
  sinceFault: Record<Criticality, OutcomeCounts>;
  /** Mean utilization of every instance in the last 5 s before the fault (should be ≈ the load fraction). */
  baselineUtilization: number | null;
  /** Over the outage: the busiest survivor-second. */
  peakSurvivorUtilization: number | null;
  peakSurvivorOffered: number | null;
  /** Mean survivors' utilization over the outage's second half (the steady state it settled into). */
  settledSurvivorUtilization: number | null;
  /** Longest run of consecutive seconds any one survivor spent above the ceiling, fault → end, ms. */
  longestAboveCeilingMs: number;
  /** Survivor-seconds above the ceiling, fault → end (instances × seconds). */
  survivorSecondsAboveCeiling: number;
  /** Last interval end, during the outage, in which a failed-zone instance served anything (its own counters). */
  failedZoneLastServedMs: number | null;
  /** Last sample, during the outage, in which the proxy's attempts to failed-zone instances grew. */
  failedZoneLastAttemptMs: number | null;
  /** First outlier ejection of a failed-zone instance (the data plane noticing). */
  firstEjectionMs: number | null;
  /** `failover.scale-up` and `failover.capacity-ready` events, and the first ready added instance seen in /v1/status. */
  scaleUpMs: number | null;
  capacityReadyEventMs: number | null;
  addedInstanceReadyMs: number | null;
  /** Most instances ready at once (the scale-up, if any). */
  maxReadyInstances: number;
  /** First shed (a 503 with `x-homeostat-shed`) per criticality, answered after the fault. */
  firstShedMs: Record<Criticality, number | null>;
  /** Every event type the controller recorded from the fault on, with its count. */
  eventTypes: Record<string, number>;
  /** The controller's failover and failback events, in order. */
  failoverEvents: { ms: number; type: string; message: string }[];
  /** Every other event from the fault on but probe chatter (`instance.health`), for the record. */
  otherEvents: { ms: number; type: string; instance: string | null; message: string }[];
  /** Whether the controller said anything about failover at all (else HOMEOSTAT behaved as NAIVE). */
  failoverActed: boolean;
  /** Requests due before the fault that failed, and all requests due before it. */
  warmupFailed: number;
  warmupSent: number;
  /** The utilization series, for the record. */
  seconds: InstanceSecond[];
  checks: TrialChecks;
}

/** Each trial's own pass/fail: a trial that misses one is a miss, whatever the margin. */
export interface TrialChecks {
  /**
   * No survivor's run of consecutive readings above the ceiling lasts longer than one
   * `stepInterval`: the readings' own measured durations (the app's clock) added up and compared
   * with the step (2,000 ms) as they are — 2,000.9 ms is a miss.
   */
  ceilingHeldWithinOneStep: boolean;
  /** No default request shed, or the first sheddable shed came no later than the first default one. */
  sheddableShedBeforeDefault: boolean;
  /** Critical requests failed below 0.1 %, fault → end. */
  criticalErrorRateBelow0_1Percent: boolean;
}

export const CHECK_NAMES: readonly (keyof TrialChecks)[] = [
  "criticalErrorRateBelow0_1Percent",
  "sheddableShedBeforeDefault",
  "ceilingHeldWithinOneStep",
];

export function allChecksPass(checks: TrialChecks): boolean {
  return CHECK_NAMES.every((name) => checks[name]);
}

/** Ejections that say the balancer took a failed-zone instance out: Homeostat's outlier ejection, HAProxy's DOWN. */
export const EJECTION_EVENTS: readonly string[] = ["traffic.ejected", "haproxy.down"];

export interface TrialEvent {
  at: number;
  type: string;
  instance?: string;
  message: string;
  data?: unknown;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

function emptyCounts(): OutcomeCounts {
  return {
    sent: 0,
    ok: 0,
    failed: 0,
    shed: 0,
    http5xx: 0,
    timeout: 0,
    connectionError: 0,
    other: 0,
    shedReasons: {},
    errors: {},
    failedShare: null,
    okP50Ms: null,
    okP99Ms: null,
  };
}

const FAILURE_FIELD: Record<Exclude<Outcome, "ok">, keyof OutcomeCounts> = {
  shed: "shed",
  "http-5xx": "http5xx",
  timeout: "timeout",
  "connection-error": "connectionError",
  "http-other": "other",
};

/** Counts of `records`, by outcome. */
export function countOutcomes(records: readonly LoadRecord[]): OutcomeCounts {
  const counts = emptyCounts();
  const latencies: number[] = [];
  for (const r of records) {
    counts.sent++;
    if (r.outcome === "ok") {
      counts.ok++;
      latencies.push(r.done - r.due);
      continue;
    }
    counts.failed++;
    (counts[FAILURE_FIELD[r.outcome]] as number)++;
    if (r.outcome === "shed") {
      const reason = r.shedReason ?? "unknown";
      counts.shedReasons[reason] = (counts.shedReasons[reason] ?? 0) + 1;
    } else {
      const what =
        r.outcome === "connection-error"
          ? (r.error ?? "unknown")
          : r.outcome === "timeout"
            ? "timeout"
            : `HTTP ${r.status}`;
      counts.errors[what] = (counts.errors[what] ?? 0) + 1;
    }
  }
  latencies.sort((a, b) => a - b);
  counts.failedShare = counts.sent === 0 ? null : counts.failed / counts.sent;
  counts.okP50Ms = percentile(latencies, 50);
  counts.okP99Ms = percentile(latencies, 99);
  return counts;
}

function byCriticality(records: readonly LoadRecord[]): Record<Criticality, OutcomeCounts> {
  return {
    critical: countOutcomes(records.filter((r) => r.criticality === "critical")),
    default: countOutcomes(records.filter((r) => r.criticality === "default")),
    sheddable: countOutcomes(records.filter((r) => r.criticality === "sheddable")),
  };
}

/** Per instance and sampling interval: utilization, offered load, throughput. Times from the fault. */
export function instanceSeconds(samples: readonly Sample[], faultFromT0: number): InstanceSecond[] {
  const seconds: InstanceSecond[] = [];
  for (let k = 1; k < samples.length; k++) {
    const previous = new Map(samples[k - 1]!.instances.map((i) => [i.instance, i]));
    for (const now of samples[k]!.instances) {
      const before = previous.get(now.instance);
      const a = before?.stats;
      const b = now.stats;
      // Not running at one end, or restarted in between (counters start again from 0).
      if (before === undefined || a == null || b == null || b.uptimeMs < a.uptimeMs || b.served < a.served)
        continue;
      // The app's own clock between the two readings: the network's jitter does not skew it.
      const durationMs = b.uptimeMs - a.uptimeMs;
      if (durationMs <= 0 || b.capacityRps === null) continue;
      const arrived =
        b.served - a.served + (b.queued + b.inWork - a.queued - a.inWork) + (b.abandoned - a.abandoned);
      seconds.push({
        instance: now.instance,
        zone: now.zone,
        end: now.at - faultFromT0,
        durationMs,
        utilization: (b.busyMs - a.busyMs) / (durationMs * b.workers),
        offered: (arrived * 1000) / durationMs / b.capacityRps,
        servedPerSecond: ((b.served - a.served) * 1000) / durationMs,
        queuedAtEnd: b.queued,
      });
    }
  }
  return seconds;
}

/** Longest run of consecutive intervals of one instance above `ceiling`, in ms, and survivor-seconds above it. */
export function aboveCeiling(
  seconds: readonly InstanceSecond[],
  ceiling: number,
): { longestMs: number; instanceSeconds: number } {
  const byInstance = new Map<string, InstanceSecond[]>();
  for (const s of seconds) byInstance.set(s.instance, [...(byInstance.get(s.instance) ?? []), s]);
  let longestMs = 0;
  let total = 0;
  for (const series of byInstance.values()) {
    series.sort((a, b) => a.end - b.end);
    let run = 0;
    let lastEnd: number | null = null;
    for (const s of series) {
      // A gap (a missed reading) breaks the run only if the instance was not read for a while.
      const contiguous = lastEnd !== null && s.end - s.durationMs - lastEnd < 500;
      if (s.utilization > ceiling) {
        run = (contiguous ? run : 0) + s.durationMs;
        total += s.durationMs / 1000;
        longestMs = Math.max(longestMs, run);
      } else run = 0;
      lastEnd = s.end;
    }
  }
  return { longestMs, instanceSeconds: total };
}

function maxOf(values: number[]): number | null {
  return values.length === 0 ? null : Math.max(...values);
}

function meanOf(values: number[]): number | null {
  return values.length === 0 ? null : values.reduce((a, b) => a + b, 0) / values.length;
}

function isFailoverEvent(e: TrialEvent): boolean {
  return e.type.startsWith("failover.") || e.type.startsWith("failback.");
}

/** `api-4` → the zone of slot 4. */
function zoneOfInstance(scenario: Scenario, instance: string): string {
  return scenario.zoneOfSlot(Number(instance.slice(instance.lastIndexOf("-") + 1)));
}

function eventInstance(e: TrialEvent): string | null {
  if (e.instance !== undefined) return e.instance;
  const instance = (e.data as { instance?: unknown } | undefined)?.instance;
  return typeof instance === "string" ? instance : null;
}

export function analyzeTrial(options: {
  scenario: Scenario;
  load: LoadResult;
  samples: readonly Sample[];
  events: readonly TrialEvent[];
  faultAt: number;
  clearedAt: number;
  stepIntervalMs: number;
}): TrialFigures {
  const { scenario, load, samples, events, faultAt, clearedAt } = options;
  const faultFromT0 = faultAt - load.t0;
  const clearedFromT0 = clearedAt - load.t0;
  const phaseOf = (r: LoadRecord): Phase =>
    r.due < faultFromT0 ? "before" : r.due < clearedFromT0 ? "outage" : "after";
  const phases: Record<Phase, LoadRecord[]> = { before: [], outage: [], after: [] };
  for (const r of load.records) phases[phaseOf(r)].push(r);

  const seconds = instanceSeconds(samples, faultFromT0);
  const outageMs = clearedAt - faultAt;
  const isSurvivor = (s: InstanceSecond) => s.zone !== scenario.failedZone;
  // An interval belongs to the outage when its middle does.
  const inOutage = (s: InstanceSecond) =>
    s.end - s.durationMs / 2 >= 0 && s.end - s.durationMs / 2 < outageMs;
  const survivorsInOutage = seconds.filter((s) => isSurvivor(s) && inOutage(s));
  const settled = survivorsInOutage.filter((s) => s.end >= outageMs / 2);
  const sinceFault = seconds.filter((s) => isSurvivor(s) && s.end - s.durationMs / 2 >= 0);
  const above = aboveCeiling(sinceFault, scenario.ceiling);

  const failedZoneServed = seconds
    .filter((s) => s.zone === scenario.failedZone && s.end > 0 && s.end - s.durationMs < outageMs)
    .filter((s) => s.servedPerSecond > 0)
    .map((s) => s.end);

  let failedZoneLastAttemptMs: number | null = null;
  const inFailedZone = (instance: string | null) =>
    instance !== null && zoneOfInstance(scenario, instance) === scenario.failedZone;
  const failedZoneAttempts = (sample: Sample) =>
    sample.attempts === null
      ? null
      : Object.entries(sample.attempts)
          .filter(([instance]) => inFailedZone(instance))
          .reduce((sum, [, n]) => sum + n, 0);
  for (let k = 1; k < samples.length; k++) {
    const at = samples[k]!.due - faultFromT0;
    if (at <= 0 || at > outageMs) continue;
    const a = failedZoneAttempts(samples[k - 1]!);
    const b = failedZoneAttempts(samples[k]!);
    if (a !== null && b !== null && b > a) failedZoneLastAttemptMs = at;
  }

  const fromFault = (e: TrialEvent) => e.at - faultAt;
  const after = events.filter((e) => e.at >= faultAt);
  const firstOf = (type: string) => {
    const e = after.find((x) => x.type === type);
    return e === undefined ? null : fromFault(e);
  };
  const firstEjection = after.find((e) => EJECTION_EVENTS.includes(e.type) && inFailedZone(eventInstance(e)));

  let addedInstanceReadyMs: number | null = null;
  let maxReadyInstances = 0;
  for (const sample of samples) {
    if (sample.status === null) continue;
    const ready = sample.status.filter((i) => i.state === "ready");
    maxReadyInstances = Math.max(maxReadyInstances, ready.length);
    const at = sample.due - faultFromT0;
    if (addedInstanceReadyMs === null && at >= 0 && ready.some((i) => i.slot >= scenario.replicas)) {
      addedInstanceReadyMs = at;
    }
  }

  const sheds = load.records.filter((r) => r.outcome === "shed" && r.done >= faultFromT0);
  const firstShed = (c: Criticality) => {
    const times = sheds.filter((r) => r.criticality === c).map((r) => r.done - faultFromT0);
    return times.length === 0 ? null : Math.min(...times);
  };
  const firstShedMs = {
    critical: firstShed("critical"),
    default: firstShed("default"),
    sheddable: firstShed("sheddable"),
  };

  const failoverEvents = after
    .filter(isFailoverEvent)
    .map((e) => ({ ms: fromFault(e), type: e.type, message: e.message }));
  const sinceFaultCounts = byCriticality([...phases.outage, ...phases.after]);
  const critical = sinceFaultCounts.critical;

  const baseline = seconds.filter((s) => s.end <= 0 && s.end > -5_000).map((s) => s.utilization);
  const warmup = countOutcomes(phases.before);
  return {
    faultAt,
    clearedAt,
    requests: {
      before: byCriticality(phases.before),
      outage: byCriticality(phases.outage),
      after: byCriticality(phases.after),
    },
    sinceFault: sinceFaultCounts,
    baselineUtilization: meanOf(baseline),
    peakSurvivorUtilization: maxOf(survivorsInOutage.map((s) => s.utilization)),
    peakSurvivorOffered: maxOf(survivorsInOutage.map((s) => s.offered)),
    settledSurvivorUtilization: meanOf(settled.map((s) => s.utilization)),
    longestAboveCeilingMs: above.longestMs,
    survivorSecondsAboveCeiling: above.instanceSeconds,
    failedZoneLastServedMs: maxOf(failedZoneServed),
    failedZoneLastAttemptMs,
    firstEjectionMs: firstEjection === undefined ? null : fromFault(firstEjection),
    scaleUpMs: firstOf("failover.scale-up"),
    capacityReadyEventMs: firstOf("failover.capacity-ready"),
    addedInstanceReadyMs,
    maxReadyInstances,
    firstShedMs,
    eventTypes: Object.fromEntries(
      [...new Set(after.map((e) => e.type))].map((type) => [
        type,
        after.filter((e) => e.type === type).length,
      ]),
    ),
    failoverEvents,
    otherEvents: after
      .filter((e) => !isFailoverEvent(e) && e.type !== "instance.health")
      .map((e) => ({ ms: fromFault(e), type: e.type, instance: eventInstance(e), message: e.message })),
    failoverActed: failoverEvents.length > 0,
    warmupFailed: warmup.failed,
    warmupSent: warmup.sent,
    seconds,
    checks: trialChecks({
      longestAboveCeilingMs: above.longestMs,
      stepIntervalMs: options.stepIntervalMs,
      firstShedMs,
      critical,
    }),
  };
}

export function trialChecks(input: {
  longestAboveCeilingMs: number;
  stepIntervalMs: number;
  firstShedMs: Record<Criticality, number | null>;
  critical: Pick<OutcomeCounts, "sent" | "failed">;
}): TrialChecks {
  const { firstShedMs, critical } = input;
  return {
    ceilingHeldWithinOneStep: input.longestAboveCeilingMs <= input.stepIntervalMs,
    sheddableShedBeforeDefault:
      firstShedMs.default === null ||
      (firstShedMs.sheddable !== null && firstShedMs.sheddable <= firstShedMs.default),
    criticalErrorRateBelow0_1Percent: critical.sent > 0 && critical.failed / critical.sent < 0.001,
  };
}

/**
 * Whether the generator kept up, as the shared generator judged its own run (`valid`,
 * `invalidReason`, `achievedRate`, lateness written − due: bench/common/loadgen/summary.ts).
 */
export function generatorHealth(load: LoadResult, offeredRatePerSecond: number): GeneratorHealth {
  return {
    offeredRatePerSecond,
    achievedRatePerSecond: load.achievedRate,
    latenessP99Ms: load.summary?.lateness?.p99 ?? null,
    maxLatenessMs: load.maxLatenessMs,
    valid: load.valid,
    invalidReason: load.valid ? null : (load.invalidReason ?? "the generator fell behind"),
  };
}

/** What pairs trials: the same scenario, fault, load and round. */
export interface PairableTrial {
  scenario: string;
  fault: string;
  loadFraction: number;
  mode: string;
  /** 0-based round. */
  repeat: number;
  ok: boolean;
  generator: GeneratorHealth | null;
  figures: TrialFigures | null;
}

/** Measured and valid: the trials every summary is made of. */
export function usable<T extends PairableTrial>(t: T): t is T & { figures: TrialFigures } {
  return t.ok && t.figures !== null && t.generator?.valid === true;
}

/**
 * The rounds in which both `mode` and `baseline` ran `scenario` × `fault` × `loadFraction` and
 * both trials are usable, in round order.
 */
export function pairTrials<T extends PairableTrial>(
  trials: readonly T[],
  key: { scenario: string; fault: string; loadFraction: number },
  mode: string,
  baseline: string,
): { repeat: number; contender: T & { figures: TrialFigures }; baseline: T & { figures: TrialFigures } }[] {
  const of = (m: string) =>
    trials.filter(
      (t) =>
        t.mode === m &&
        t.scenario === key.scenario &&
        t.fault === key.fault &&
        t.loadFraction === key.loadFraction,
    );
  const pairs: {
    repeat: number;
    contender: T & { figures: TrialFigures };
    baseline: T & { figures: TrialFigures };
  }[] = [];
  for (const c of of(mode)) {
    const b = of(baseline).find((x) => x.repeat === c.repeat);
    if (b === undefined || !usable(c) || !usable(b)) continue;
    pairs.push({ repeat: c.repeat, contender: c, baseline: b });
  }
  return pairs.sort((x, y) => x.repeat - y.repeat);
}

/** contender ÷ baseline per round, and their distribution. */
export interface PairedRatio {
  /** Rounds with both trials usable. */
  pairs: number;
  /** One per pair where both values exist and the baseline's is above 0, in round order. */
  ratios: number[];
  /** Pairs left out because the baseline's value was 0 (contender's value in `zeroBaseline`). */
  zeroBaseline: number[];
  summary: Summary | null;
}

export function pairedRatio(
  pairs: readonly { contender: { figures: TrialFigures }; baseline: { figures: TrialFigures } }[],
  pick: (f: TrialFigures) => number | null,
): PairedRatio {
  const ratios: number[] = [];
  const zeroBaseline: number[] = [];
  for (const pair of pairs) {
    const c = pick(pair.contender.figures);
    const b = pick(pair.baseline.figures);
    if (c === null || b === null) continue;
    if (b === 0) zeroBaseline.push(c);
    else ratios.push(c / b);
  }
  return { pairs: pairs.length, ratios, zeroBaseline, summary: summarize(ratios) };
}

/** The worst criticality's p99 of successes during the outage (from due). */
export function outageP99(f: TrialFigures): number | null {
  const p99s = CRITICALITIES.flatMap((c) => f.requests.outage[c].okP99Ms ?? []);
  return p99s.length === 0 ? null : Math.max(...p99s);
}

/** Failed share of every request from the fault to the end. */
export function failedShareSinceFault(f: TrialFigures, only?: Criticality): number | null {
  const counts = CRITICALITIES.filter((c) => only === undefined || c === only).map((c) => f.sinceFault[c]);
  const sent = counts.reduce((n, c) => n + c.sent, 0);
  return sent === 0 ? null : counts.reduce((n, c) => n + c.failed, 0) / sent;
}

/** The figures compared as "× HAProxy", with how to read each one. */
export const RATIO_METRICS: readonly {
  key: string;
  label: string;
  pick: (f: TrialFigures) => number | null;
}[] = [
  { key: "outageP99", label: "p99 of successes during the outage", pick: outageP99 },
  {
    key: "failedShare",
    label: "failed requests since the fault (all)",
    pick: (f) => failedShareSinceFault(f),
  },
  {
    key: "failedCritical",
    label: "failed critical since the fault",
    pick: (f) => failedShareSinceFault(f, "critical"),
  },
  {
    key: "peakSurvivorUtilization",
    label: "survivors' peak utilization",
    pick: (f) => f.peakSurvivorUtilization,
  },
  {
    key: "survivorSecondsAboveCeiling",
    label: "survivor-seconds above the ceiling",
    pick: (f) => f.survivorSecondsAboveCeiling,
  },
];
