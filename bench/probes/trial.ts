/**
 * One trial: a fresh fleet under a real `homeostat up` (controller and data-plane processes, real
 * instance processes), left to settle once every instance is ready, then measured over a window:
 * the controller's CPU (utime + stime from /proc) divided by the probes it ran in that window (its
 * own `homeostat_controller_probes_total`), its RSS, the data plane's and the instances' CPU
 * (reported, never counted as the controller's), and what else the machine was doing.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import type { StatusDocument } from "../../src/server/statusView.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { Teardown } from "../common/teardown.ts";
import { clockTicksPerSecond, cpuTicks, rssKiB } from "../foundation/procSample.ts";
import { expectedProbeRate, type ProbeFleetShape, probeFleetYaml } from "./fleet.ts";
import {
  type CpuProfile,
  InspectorSession,
  type ProfileSummary,
  startProfiling,
  summarizeProfile,
} from "./inspector.ts";

export interface TrialSetup {
  repo: string;
  shape: ProbeFleetShape;
  apiPort: number;
  settleMs: number;
  windowMs: number;
  profile: boolean;
  /** Node flags for the controller process (the data plane it starts inherits them). */
  controllerFlags: string[];
  log: (message: string) => void;
}

/** CPU time of a set of processes over the window, in ms, and as a share of one core. */
export interface CpuFigure {
  cpuMs: number;
  percentOfCore: number;
}

export interface TrialResult {
  intervalMs: number;
  instances: number;
  /** Start of `up` to every instance ready. */
  readyAfterMs: number;
  windowMs: number;
  probes: { counted: number; perSecond: number; expectedPerSecond: number; failed: number };
  controller: CpuFigure & {
    pid: number;
    /** The figure of the issue: controller CPU ms over the window ÷ probes run in it. */
    cpuMsPerProbe: number;
    /** The CPU time split: in the process itself (JavaScript, V8, libuv) and in the kernel for it (syscalls). */
    userMs: number;
    systemMs: number;
    rssMiB: { start: number; end: number; max: number };
    /** From /proc/PID/status at the end: anonymous (heap, stacks) vs file-backed (code, mapped files). */
    rssBreakdownMiB: { anonymous: number; file: number; shmem: number } | null;
    /** process.memoryUsage() read over the inspector (profiled runs only). */
    memoryUsage: Record<string, number> | null;
  };
  dataPlane: (CpuFigure & { pid: number; rssMiB: number }) | null;
  /** Every instance server together (excluded from the controller's figure). */
  instancesCpu: CpuFigure;
  /** Other processes' share of the machine over the window: what the trial competed with. */
  machine: {
    cpus: number;
    /** Every CPU's busy time over the window, as a share of all CPUs. */
    busyPercent: number;
    /** The same minus the controller, data plane and instances, in cores. */
    othersCores: number;
    loadAverage1m: { start: number; end: number };
  };
  /** The controller's reconcile passes over the window (its own histogram): how many, and their wall time. */
  passes: { perSecond: number; wallMsEach: number };
  /** Instance restarts or readiness losses during the window: a trial with any is not steady. */
  restartsInWindow: number;
  notReadyAtEnd: number;
  profile: ProfileSummary | null;
  profileFile: string | null;
}

interface MachineCpu {
  busy: number;
  total: number;
}

function machineCpu(): MachineCpu {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/** utime and stime of `pid` in clock ticks (fields 14 and 15 of /proc/PID/stat). */
function userSystemTicks(pid: number): { user: number; system: number } {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  return { user: Number(fields[11]), system: Number(fields[12]) };
}

function ticksOr0(pid: number): number {
  try {
    return cpuTicks(pid);
  } catch {
    return 0;
  }
}

function rssBreakdownMiB(pid: number): { anonymous: number; file: number; shmem: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, "utf8");
    const mib = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(text)?.[1] ?? 0) / 1024;
    return { anonymous: mib("RssAnon"), file: mib("RssFile"), shmem: mib("RssShmem") };
  } catch {
    return null;
  }
}

/** `homeostat_controller_reconcile_duration_seconds` count and sum: the controller's passes. */
function passTotals(metrics: string): { count: number; seconds: number } {
  const value = (name: string) =>
    Number(
      new RegExp(`^homeostat_controller_reconcile_duration_seconds_${name} (\\S+)$`, "m").exec(
        metrics,
      )?.[1] ?? 0,
    );
  return { count: value("count"), seconds: value("sum") };
}

/** `homeostat_controller_probes_total` summed, and its failed part. */
function probeTotals(metrics: string): { total: number; failed: number } {
  let total = 0;
  let failed = 0;
  for (const match of metrics.matchAll(/^homeostat_controller_probes_total\{([^}]*)\} (\S+)$/gm)) {
    const value = Number(match[2]);
    total += value;
    if (match[1]!.includes('outcome="failed"')) failed += value;
  }
  return { total, failed };
}

class ControllerUnderTest {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  readonly output: string[] = [];
  inspectorUrl: string | null = null;
  readonly #token: () => string;
  readonly #base: string;

  constructor(setup: TrialSetup, fleetFile: string, stateDir: string) {
    // The fleet says `command: node`: the Node that runs the bench (24) comes first on PATH.
    const path = [dirname(process.execPath), process.env.PATH ?? ""].join(delimiter);
    const args = [
      ...setup.controllerFlags,
      ...(setup.profile ? ["--inspect=127.0.0.1:0"] : []),
      join(setup.repo, "bin/homeostat.js"),
      "up",
      fleetFile,
      "--state-dir",
      stateDir,
      "--api-port",
      String(setup.apiPort),
      "--quiet",
    ];
    this.child = spawn(process.execPath, args, {
      cwd: dirname(fleetFile),
      env: { ...process.env, PATH: path },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.exited = new Promise((resolve) => this.child.once("exit", () => resolve()));
    const keep = (line: string) => {
      this.output.push(line);
      if (this.output.length > 200) this.output.shift();
      const ws = /Debugger listening on (ws:\/\/\S+)/.exec(line);
      if (ws && this.inspectorUrl === null) this.inspectorUrl = ws[1]!;
    };
    createInterface({ input: this.child.stdout! }).on("line", keep);
    createInterface({ input: this.child.stderr! }).on("line", keep);
    this.#base = `http://127.0.0.1:${setup.apiPort}`;
    let token: string | null = null;
    this.#token = () => {
      token ??= readFileSync(join(stateDir, "admin-token"), "utf8").trim();
      return token;
    };
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async get(path: string): Promise<string> {
    const response = await fetch(`${this.#base}${path}`, {
      headers: { authorization: `Bearer ${this.#token()}` },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${text.slice(0, 200)}`);
    return text;
  }

  async status(): Promise<StatusDocument> {
    return JSON.parse(await this.get("/v1/status")) as StatusDocument;
  }

  /** Ctrl-C: the controller stops every instance and the data plane, then exits. */
  async stop(): Promise<void> {
    if (this.running) {
      this.child.kill("SIGINT");
      const stopped = await Promise.race([this.exited.then(() => true), sleep(60_000).then(() => false)]);
      if (!stopped) this.child.kill("SIGKILL");
    }
    await this.exited;
  }
}

function instancePids(status: StatusDocument): Map<string, number> {
  const pids = new Map<string, number>();
  for (const service of status.services) {
    for (const instance of service.instances)
      if (instance.pid !== null) pids.set(instance.name, instance.pid);
  }
  return pids;
}

function readyCount(status: StatusDocument): number {
  return status.services.reduce((n, s) => n + s.instances.filter((i) => i.state === "ready").length, 0);
}

/** Run one trial; every process it started is stopped (and swept by `teardown`) before it returns. */
export async function runTrial(
  setup: TrialSetup,
  teardown: Teardown,
): Promise<{ result: TrialResult; profile: CpuProfile | null }> {
  const { shape, log } = setup;
  const total = shape.services * shape.replicas;
  const dir = mkdtempSync(join(tmpdir(), "homeostat-bench-probes-"));
  const fleetFile = join(dir, "fleet.yaml");
  writeFileSync(fleetFile, probeFleetYaml(shape));
  // Also when the bench is interrupted (the finally below does not run then).
  teardown.add(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  const started = performance.now();
  const controller = new ControllerUnderTest(setup, fleetFile, join(dir, "state"));
  if (controller.child.pid !== undefined) teardown.ledger.note(controller.child.pid);
  let inspector: InspectorSession | null = null;
  try {
    const status = await waitFor(
      async () => {
        if (!controller.running) throw new Error(`the controller exited:\n${controller.output.join("\n")}`);
        const s = await controller.status();
        for (const pid of instancePids(s).values()) teardown.ledger.note(pid);
        if (s.dataPlane?.pid) teardown.ledger.note(s.dataPlane.pid);
        return readyCount(s) === total ? s : null;
      },
      { timeoutMs: 180_000, intervalMs: 250, what: `${total} ready instances` },
    );
    const readyAfterMs = performance.now() - started;
    log(
      `${total} instances ready after ${(readyAfterMs / 1000).toFixed(1)} s; settling ${setup.settleMs / 1000} s`,
    );
    // Letting start-up work (spawns, first snapshots, readiness events) finish is the point here.
    await sleep(setup.settleMs);

    const controllerPid = controller.child.pid!;
    const pidsAtStart = instancePids(await controller.status());
    const dataPlanePid = status.dataPlane?.pid ?? null;
    let stopProfile: (() => Promise<CpuProfile>) | null = null;
    if (setup.profile) {
      if (controller.inspectorUrl === null) throw new Error("the controller printed no inspector URL");
      inspector = await InspectorSession.connect(controller.inspectorUrl);
      stopProfile = await startProfiling(inspector);
    }
    const hz = clockTicksPerSecond();
    const metricsStart = await controller.get("/metrics");
    const probesStart = probeTotals(metricsStart);
    const passesStart = passTotals(metricsStart);
    const t0 = performance.now();
    const c0 = cpuTicks(controllerPid);
    const us0 = userSystemTicks(controllerPid);
    const d0 = dataPlanePid === null ? 0 : ticksOr0(dataPlanePid);
    const i0 = [...pidsAtStart.values()].reduce((sum, pid) => sum + ticksOr0(pid), 0);
    const m0 = machineCpu();
    const load0 = loadavg()[0] ?? 0;
    const rssStart = rssKiB(controllerPid) / 1024;
    let rssMax = rssStart;
    while (performance.now() - t0 < setup.windowMs) {
      // A measurement window: time must pass; /proc is read without waking the controller.
      await sleep(Math.min(1000, setup.windowMs - (performance.now() - t0)));
      rssMax = Math.max(rssMax, rssKiB(controllerPid) / 1024);
    }
    const c1 = cpuTicks(controllerPid);
    const us1 = userSystemTicks(controllerPid);
    const d1 = dataPlanePid === null ? 0 : ticksOr0(dataPlanePid);
    const i1 = [...pidsAtStart.values()].reduce((sum, pid) => sum + ticksOr0(pid), 0);
    const m1 = machineCpu();
    const windowMs = performance.now() - t0;
    const rssEnd = rssKiB(controllerPid) / 1024;
    const rssBreakdown = rssBreakdownMiB(controllerPid);
    const metricsEnd = await controller.get("/metrics");
    const probesEnd = probeTotals(metricsEnd);
    const passesEnd = passTotals(metricsEnd);
    let memoryUsage: Record<string, number> | null = null;
    let profile: CpuProfile | null = null;
    if (inspector !== null && stopProfile !== null) {
      profile = await stopProfile();
      const evaluated = await inspector.call<{ result: { value?: Record<string, number> } }>(
        "Runtime.evaluate",
        { expression: "process.memoryUsage()", returnByValue: true },
      );
      memoryUsage = evaluated.result.value ?? null;
      // Where the V8 heap is: young generation (grows with allocation bursts), old, code, large objects.
      const spaces = await inspector.call<{ result: { value?: Record<string, number> } }>(
        "Runtime.evaluate",
        {
          expression:
            'Object.fromEntries(process.getBuiltinModule("v8").getHeapSpaceStatistics().map((s) => [s.space_name, s.space_size]))',
          returnByValue: true,
        },
      );
      if (memoryUsage !== null && spaces.result.value) {
        for (const [space, bytes] of Object.entries(spaces.result.value))
          memoryUsage[`space:${space}`] = bytes;
      }
    }
    const endStatus = await controller.status();
    const pidsAtEnd = instancePids(endStatus);
    let restarts = 0;
    for (const [name, pid] of pidsAtStart) if (pidsAtEnd.get(name) !== pid) restarts++;

    const cpu = (ticks: number): CpuFigure => {
      const cpuMs = (ticks / hz) * 1000;
      return { cpuMs, percentOfCore: (cpuMs / windowMs) * 100 };
    };
    const counted = probesEnd.total - probesStart.total;
    const controllerCpu = cpu(c1 - c0);
    const machineTicks = m1.total - m0.total;
    const cpuCount = availableParallelism();
    const busyCores = (m1.busy - m0.busy) / hz / (windowMs / 1000);
    const ours = (c1 - c0 + (d1 - d0) + (i1 - i0)) / hz / (windowMs / 1000);
    const result: TrialResult = {
      intervalMs: shape.intervalMs,
      instances: total,
      readyAfterMs,
      windowMs,
      probes: {
        counted,
        perSecond: counted / (windowMs / 1000),
        expectedPerSecond: expectedProbeRate(shape),
        failed: probesEnd.failed - probesStart.failed,
      },
      controller: {
        pid: controllerPid,
        ...controllerCpu,
        cpuMsPerProbe: counted > 0 ? controllerCpu.cpuMs / counted : Number.NaN,
        userMs: ((us1.user - us0.user) / hz) * 1000,
        systemMs: ((us1.system - us0.system) / hz) * 1000,
        rssMiB: { start: rssStart, end: rssEnd, max: rssMax },
        rssBreakdownMiB: rssBreakdown,
        memoryUsage,
      },
      dataPlane:
        dataPlanePid === null
          ? null
          : { pid: dataPlanePid, ...cpu(d1 - d0), rssMiB: rssKiB(dataPlanePid) / 1024 },
      instancesCpu: cpu(i1 - i0),
      machine: {
        cpus: cpuCount,
        busyPercent: machineTicks > 0 ? ((m1.busy - m0.busy) / machineTicks) * 100 : 0,
        othersCores: Math.max(0, busyCores - ours),
        loadAverage1m: { start: load0, end: loadavg()[0] ?? 0 },
      },
      passes: {
        perSecond: (passesEnd.count - passesStart.count) / (windowMs / 1000),
        wallMsEach:
          passesEnd.count > passesStart.count
            ? ((passesEnd.seconds - passesStart.seconds) * 1000) / (passesEnd.count - passesStart.count)
            : Number.NaN,
      },
      restartsInWindow: restarts,
      notReadyAtEnd: total - readyCount(endStatus),
      profile: profile === null ? null : summarizeProfile(profile),
      profileFile: null,
    };
    return { result, profile };
  } finally {
    inspector?.close();
    await controller.stop();
    teardown.ledger.sweep();
    rmSync(dir, { recursive: true, force: true });
  }
}
