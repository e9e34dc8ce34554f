import { HomeostatError } from "../errors.ts";
import type { ProbeKind } from "../observe/health.ts";
import { durationMs } from "./duration.ts";
import type { ProbeCheck, ProbeSet, ProbeSpec } from "./model.ts";
import type { Problem } from "./problem.ts";
import type { ProbeInput, ProbesInput } from "./schema.ts";
import type { PathSegment } from "./yamlSource.ts";

const PROBE_KINDS: readonly ProbeKind[] = ["startup", "readiness", "liveness"];
const TRANSPORTS = ["http", "tcp", "exec"] as const;

/** Probe defaults when a field is omitted. */
export const PROBE_DEFAULTS = {
  intervalMs: 1_000,
  /** Capped at the interval, so that a short interval alone is valid. */
  timeoutMs: 1_000,
  failureThreshold: 3,
  successThreshold: 1,
  initialDelayMs: 0,
  expectStatus: [200, 399] as [number, number],
};

/**
 * Rules that relate a probe's fields: exactly one transport; `successThreshold` 1 for startup
 * and liveness (a single success proves a process alive, as in Kubernetes); a timeout no longer
 * than the interval (a probe cannot overlap itself); a status range that is not backwards.
 */
export function checkProbes(probes: ProbesInput | undefined, path: readonly PathSegment[]): Problem[] {
  const problems: Problem[] = [];
  for (const kind of PROBE_KINDS) {
    const probe = probes?.[kind];
    if (probe === undefined || probe === "off") continue;
    problems.push(...checkProbe(kind, probe, [...path, kind]));
  }
  return problems;
}

function checkProbe(kind: ProbeKind, probe: ProbeInput, path: PathSegment[]): Problem[] {
  const problems: Problem[] = [];
  const transports = TRANSPORTS.filter((transport) => probe[transport] !== undefined);
  if (transports.length === 0) {
    problems.push({ path, target: "value", message: 'a probe needs one of "http", "tcp" or "exec"' });
  } else if (transports.length > 1) {
    problems.push({
      path: [...path, transports[1]!],
      target: "key",
      message: `a probe has exactly one transport, found ${transports.map((t) => `"${t}"`).join(" and ")}`,
    });
  }
  if ((kind === "startup" || kind === "liveness") && probe.successThreshold !== undefined) {
    if (probe.successThreshold !== 1) {
      problems.push({
        path: [...path, "successThreshold"],
        target: "value",
        message: `a ${kind} probe must have successThreshold 1, got ${probe.successThreshold}`,
      });
    }
  }
  if (probe.timeout !== undefined) {
    const timeoutMs = durationMs(probe.timeout);
    const intervalMs = probe.interval === undefined ? PROBE_DEFAULTS.intervalMs : durationMs(probe.interval);
    if (timeoutMs > intervalMs) {
      const interval =
        probe.interval === undefined ? `the default interval ${intervalMs}ms` : `interval ${intervalMs}ms`;
      problems.push({
        path: [...path, "timeout"],
        target: "value",
        message: `timeout ${timeoutMs}ms is longer than ${interval}: a probe cannot overlap itself`,
      });
    }
  }
  const status = probe.http?.expectStatus;
  if (typeof status === "string") {
    const [min, max] = statusRange(status);
    if (min > max) {
      problems.push({
        path: [...path, "http", "expectStatus"],
        target: "value",
        message: `status range "${status}" is backwards`,
      });
    }
  }
  return problems;
}

/**
 * The probes a service runs: per kind, the service's own entry if it has one (`off` disables the
 * default), else the fleet default for that kind. Entries replace each other whole, never merge.
 */
export function resolveProbes(defaults: ProbesInput | undefined, own: ProbesInput | undefined): ProbeSet {
  const set: ProbeSet = {};
  for (const kind of PROBE_KINDS) {
    const entry = own?.[kind] ?? defaults?.[kind];
    if (entry !== undefined && entry !== "off") set[kind] = resolveProbe(entry);
  }
  return set;
}

function resolveProbe(probe: ProbeInput): ProbeSpec {
  const intervalMs = probe.interval === undefined ? PROBE_DEFAULTS.intervalMs : durationMs(probe.interval);
  return {
    check: resolveCheck(probe),
    intervalMs,
    timeoutMs:
      probe.timeout === undefined
        ? Math.min(PROBE_DEFAULTS.timeoutMs, intervalMs)
        : durationMs(probe.timeout),
    failureThreshold: probe.failureThreshold ?? PROBE_DEFAULTS.failureThreshold,
    successThreshold: probe.successThreshold ?? PROBE_DEFAULTS.successThreshold,
    initialDelayMs:
      probe.initialDelay === undefined ? PROBE_DEFAULTS.initialDelayMs : durationMs(probe.initialDelay),
  };
}

function resolveCheck(probe: ProbeInput): ProbeCheck {
  if (probe.http !== undefined) {
    const status = probe.http.expectStatus;
    const expectStatus: [number, number] =
      status === undefined
        ? [...PROBE_DEFAULTS.expectStatus]
        : typeof status === "number"
          ? [status, status]
          : statusRange(status);
    return withPort({ kind: "http", path: probe.http.path, expectStatus }, probe.http.port);
  }
  if (probe.tcp !== undefined) return withPort({ kind: "tcp" }, probe.tcp.port);
  if (probe.exec !== undefined) {
    return { kind: "exec", command: probe.exec.command, args: probe.exec.args ?? [] };
  }
  throw new HomeostatError("HS_INTERNAL", "a validated probe has no transport");
}

function withPort<Check extends ProbeCheck>(check: Check, port: number | undefined): Check {
  return port === undefined ? check : { ...check, port };
}

/** `"200-399"` → `[200, 399]`; `"204"` → `[204, 204]`. */
function statusRange(text: string): [number, number] {
  const [min, max = min] = text.split("-").map(Number);
  return [min!, max!];
}

/**
 * What a service is judged by when its fleet file declares no probe at all (neither the service
 * nor `defaults.probes`, not even `off`): `tcp` when its instances listen on their port — it has a
 * front `port` the data plane sends traffic to, or a release passes `{port}` — else `process`,
 * its process alone (running is ready). See docs/fleet-spec.md#default-probes.
 */
export type ProbeDefaults = "tcp" | "process";

/** A TCP connect to the instance's port, 3 failures a second apart: default readiness and liveness alike. */
const TCP_EVERY_SECOND = {
  check: { kind: "tcp" },
  intervalMs: 1_000,
  timeoutMs: 1_000,
  failureThreshold: 3,
  successThreshold: 1,
  initialDelayMs: 0,
} as const;

/**
 * The default probes of a service that takes its port: a TCP connect to the instance's port for
 * startup (up to 60 s), readiness and liveness (3 failures a second apart). A service that needs
 * a request path, a slower start or no probing at all declares its own (`off` included).
 */
export const DEFAULT_TCP_PROBES: Readonly<Required<ProbeSet>> = {
  startup: {
    check: { kind: "tcp" },
    intervalMs: 500,
    timeoutMs: 500,
    failureThreshold: 120,
    successThreshold: 1,
    initialDelayMs: 0,
  },
  readiness: TCP_EVERY_SECOND,
  liveness: TCP_EVERY_SECOND,
};

/** True when neither the fleet's defaults nor the service name a probe kind (`off` counts as named). */
export function declaresNoProbe(defaults: ProbesInput | undefined, own: ProbesInput | undefined): boolean {
  return PROBE_KINDS.every((kind) => defaults?.[kind] === undefined && own?.[kind] === undefined);
}

/**
 * The probes put in force for a service that declares none, and which kind they are: TCP on the
 * instance port when `takesPort`, else none (judged by its process).
 */
export function defaultProbes(takesPort: boolean): { probes: ProbeSet; kind: ProbeDefaults } {
  if (!takesPort) return { probes: {}, kind: "process" };
  return {
    probes: {
      startup: { ...DEFAULT_TCP_PROBES.startup, check: { kind: "tcp" } },
      readiness: { ...DEFAULT_TCP_PROBES.readiness, check: { kind: "tcp" } },
      liveness: { ...DEFAULT_TCP_PROBES.liveness, check: { kind: "tcp" } },
    },
    kind: "tcp",
  };
}

/**
 * How long an instance may take to become ready before it is reported (docs/fleet-spec.md#probes):
 * for the startup probe then the readiness probe, each `initialDelay + interval × max(failure,
 * success threshold) + timeout`, added up; null when neither exists (ready as soon as it runs).
 */
export function startupBudgetMs(probes: ProbeSet): number | null {
  const gates = [probes.startup, probes.readiness].filter((p): p is ProbeSpec => p !== undefined);
  if (gates.length === 0) return null;
  return gates.reduce(
    (total, p) =>
      total +
      p.initialDelayMs +
      p.intervalMs * Math.max(p.failureThreshold, p.successThreshold) +
      p.timeoutMs,
    0,
  );
}
