/**
 * The verification gate: when may a recovery be called done? Readiness only proves that
 * something answers. A recovery is verified when, for the whole service:
 *
 * 1. every instance it should run is ready and converged on the desired release, config hash and
 *    secret versions (see `convergence.ts`);
 * 2. the SLO held over the stabilization window, measured on the data plane's traffic when the
 *    service has a front port;
 * 3. the security invariants hold: checked, and none broken.
 *
 * Pure: observations in, a verdict with a sentence per condition out. No traffic in the window
 * is not an SLO breach, but neither is it evidence: the gate passes on readiness alone and says
 * "no traffic seen", so the reader knows what was (not) measured. Missing figures are not "no
 * traffic": while the data plane's reports do not reach the controller, the SLO condition fails.
 */

import type { SloSpec } from "../spec/model.ts";
import type { DataPlaneStatus } from "../traffic/dataPlaneControl.ts";
import type { WindowStats } from "../traffic/stats/index.ts";
import { type Drift, describeDrift } from "./convergence.ts";
import type { InvariantVerdict } from "./invariants.ts";

/** One instance the service should run, as observed now. */
export interface GateInstance {
  name: string;
  ready: boolean;
  /** Why it is not ready ("exited", "starting"), shown when it blocks. */
  state: string;
  /** How its launch facts differ from the desired ones (empty: converged). */
  drift: Drift[];
}

export interface GateInput {
  service: string;
  /** Every instance the service should run now (all banks the release manager wants). */
  instances: GateInstance[];
  /** How many instances the service should run; fewer observed is not converged. */
  wanted: number;
  slo: SloSpec;
  /** Traffic over the stabilization window; null when the service has no front port. */
  window: WindowStats | null;
  windowMs: number;
  invariants: InvariantVerdict;
  /**
   * Why the window cannot be trusted to hold all of the service's traffic (see {@link sloDataGap}),
   * or null/absent when it can. Set, the SLO condition fails: an empty window is then missing data,
   * not "no traffic".
   */
  sloDataGap?: string | null;
}

export interface GateCondition {
  ok: boolean;
  detail: string;
}

export interface GateVerdict {
  passed: boolean;
  converged: GateCondition;
  slo: GateCondition;
  invariants: GateCondition;
  /** The details of the conditions that block, in order; empty when passed. */
  blocking: string[];
}

/** Judge the three conditions. Each alone blocks; all three must hold. */
export function evaluateGate(input: GateInput): GateVerdict {
  const converged = convergedCondition(input);
  const slo = sloCondition(input);
  const invariants = invariantCondition(input.invariants);
  const conditions = [converged, slo, invariants];
  return {
    passed: conditions.every((c) => c.ok),
    converged,
    slo,
    invariants,
    blocking: conditions.filter((c) => !c.ok).map((c) => c.detail),
  };
}

function convergedCondition(input: GateInput): GateCondition {
  const problems: string[] = [];
  if (input.instances.length < input.wanted) {
    problems.push(`${input.instances.length} of ${input.wanted} instances exist`);
  }
  for (const i of input.instances) {
    if (!i.ready) problems.push(`${i.name} not ready (${i.state})`);
    for (const d of i.drift) problems.push(`${i.name} ${describeDrift(d)}`);
  }
  if (problems.length > 0) return { ok: false, detail: `not converged: ${problems.join("; ")}` };
  return {
    ok: true,
    detail: `all ${input.instances.length} instance(s) ready on the desired release, config and secrets`,
  };
}

function sloCondition(input: GateInput): GateCondition {
  const seconds = Math.round(input.windowMs / 1000);
  if (input.window === null) {
    return { ok: true, detail: "no front port: SLO not measured, verified on readiness alone" };
  }
  if (input.sloDataGap) {
    return { ok: false, detail: `SLO not measured: ${input.sloDataGap}` };
  }
  const w = input.window;
  if (w.requests === 0 || w.errorRate === null) {
    return { ok: true, detail: `no traffic seen in the last ${seconds}s: verified on readiness alone` };
  }
  const breaches: string[] = [];
  if (w.errorRate > input.slo.errorRate) {
    breaches.push(`error rate ${pct(w.errorRate)} > SLO ${pct(input.slo.errorRate)}`);
  }
  if (w.p99Ms !== null && w.p99Ms > input.slo.p99Ms) {
    breaches.push(`p99 ${Math.round(w.p99Ms)}ms > SLO ${input.slo.p99Ms}ms`);
  }
  const figures = `${w.requests} requests in ${seconds}s`;
  if (breaches.length > 0) return { ok: false, detail: `SLO not held: ${breaches.join(", ")} (${figures})` };
  return {
    ok: true,
    detail: `SLO held: error rate ${pct(w.errorRate)}, p99 ${w.p99Ms === null ? "-" : `${Math.round(w.p99Ms)}ms`} (${figures})`,
  };
}

/** Reports older than this (the data plane reports every 250 ms) mean its figures stopped coming. */
export const REPORT_STALE_MS = 3_000;

/**
 * Why the controller's traffic figures may be missing some of what the data plane serves, or null.
 * A data-plane process keeps serving without a controller; while its feed is down (or its reports
 * stopped) the controller's windows go empty although traffic flows, and an empty window must not
 * read as "no traffic". An in-process data plane counts in the controller itself: never a gap.
 */
export function sloDataGap(status: DataPlaneStatus | undefined, now: number): string | null {
  if (status === undefined || status.mode !== "process") return null;
  if (!status.connected) return "the data plane is not connected to the controller, its traffic is not seen";
  if (status.lastReportAt === null) return "the data plane has not reported its traffic yet";
  const age = now - status.lastReportAt;
  if (age > REPORT_STALE_MS) {
    return `the data plane's last traffic report is ${Math.round(age / 1000)}s old`;
  }
  return null;
}

function invariantCondition(v: InvariantVerdict): GateCondition {
  if (v.broken.length > 0) {
    return { ok: false, detail: `invariant broken: ${v.broken.map((b) => b.detail).join("; ")}` };
  }
  if (!v.checked) return { ok: false, detail: "invariants not checked yet on every ready instance" };
  if (!v.ok) return { ok: false, detail: "invariants do not hold" };
  return { ok: true, detail: "security invariants hold" };
}

function pct(rate: number): string {
  return `${Math.round(rate * 10_000) / 100}%`;
}
