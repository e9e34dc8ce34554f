/**
 * End-to-end harness: runs the real `homeostat` CLI as child processes against fleets written to
 * a temp dir, on ports the OS says are free, and cleans up every process it or the controller
 * started — even when a test fails half-way.
 */

import { type ChildProcess, spawn } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { after } from "node:test";
import { fileURLToPath } from "node:url";
import { type RunResult, run } from "./run.ts";
import { waitFor } from "./waitFor.ts";

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const BIN = join(REPO, "bin/homeostat.js");
export const APP = join(REPO, "examples/app/server.ts");
/** Absolute path of the Node that runs the tests (Node 24): fleets use it so PATH does not matter. */
export const NODE = process.execPath;

export type CliResult = RunResult;

/**
 * Where every `homeostat` these tests start keeps its per-user pointers (`up` writes one per API
 * port): a temp dir of this test process, so no test ever touches the real ~/.config/homeostat.
 * Set in this process's environment, so that children (benches start `up` themselves) inherit it.
 */
export const TEST_CONFIG_DIR: string = testConfigDir();

function testConfigDir(): string {
  const given = process.env.HOMEOSTAT_CONFIG_DIR;
  if (given !== undefined) return given;
  const made = mkdtempSync(join(tmpdir(), "homeostat-config-"));
  process.env.HOMEOSTAT_CONFIG_DIR = made;
  process.once("exit", () => rmSync(made, { recursive: true, force: true }));
  return made;
}

/** Run a CLI command to completion (`env` is added to this process's environment). */
export function cli(
  args: string[],
  options: { cwd?: string; timeoutMs?: number; env?: Record<string, string> } = {},
): Promise<CliResult> {
  return run(NODE, [BIN, ...args], {
    cwd: options.cwd ?? REPO,
    env: { ...process.env, ...options.env },
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
    label: `homeostat ${args.join(" ")}`,
  });
}

/** A port nobody listens on right now, outside the ephemeral range (see rangeWindow). */
export async function freePort(): Promise<number> {
  return await freePortRange(1);
}

async function portIsFree(port: number): Promise<boolean> {
  return await new Promise((resolvePromise) => {
    const server = createServer();
    server.once("error", () => resolvePromise(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolvePromise(true)));
  });
}

/**
 * Where instance port ranges are drawn from: below the kernel's ephemeral range, which outgoing
 * connections (the tests' own load, the proxy's upstream pools) take their source ports from — a
 * range inside it can be taken between the check and the instance's bind.
 */
function rangeWindow(): { low: number; high: number } {
  try {
    const [ephemeralLow] = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8")
      .trim()
      .split(/\s+/)
      .map(Number);
    if (ephemeralLow !== undefined && ephemeralLow > 12_000) return { low: 10_000, high: ephemeralLow - 1 };
  } catch {
    // not Linux: fall through
  }
  return { low: 20_000, high: 30_000 };
}

/** `count` consecutive free ports, for a service's instance range (outside the ephemeral range). */
export async function freePortRange(count: number): Promise<number> {
  const { low, high } = rangeWindow();
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = low + Math.floor(Math.random() * (high - low - count));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await portIsFree(p);
    if (ok) return base;
  }
  throw new Error(`no range of ${count} free ports found`);
}

export interface Sandbox {
  dir: string;
  apiPort: number;
  stateDir: string;
  file(name: string, text: string): string;
  /** Start `homeostat up FILE` in the background. */
  /** This sandbox's per-user config dir (`$HOMEOSTAT_CONFIG_DIR` of its `up` and `cli`). */
  configDir: string;
  up(fleetFile: string, extraArgs?: string[]): Controller;
  /** Run the CLI in the sandbox: it finds the token as a user's would (the pointer `up` wrote). */
  cli(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** The admin token `up` wrote to the state dir. */
  token(): string;
  /** GET from the controller API, with the admin token; throws unless 2xx. */
  get<T>(path: string): Promise<T>;
  /**
   * Any request to the controller API, with the admin token (or `token`; null sends none), and a
   * JSON body for changes (`{}` when none is given).
   */
  api(method: string, path: string, body?: unknown, token?: string | null): Promise<Response>;
  /** Kill every process left: controllers, instances (anything whose cwd is in the sandbox). */
  cleanup(): Promise<void>;
  /** Each `up` this sandbox started: running or how it exited, and the end of what it printed. */
  describeControllers(): string;
}

export interface Controller {
  child: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export async function sandbox(prefix = "homeostat-e2e-"): Promise<Sandbox> {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), prefix)));
  const apiPort = await freePort();
  // The default state directory of the sandbox's `fleet.yaml` (one per fleet file: .homeostat/<name>/).
  const stateDir = join(dir, ".homeostat", "fleet");
  const configDir = join(dir, "config");
  const env = { HOMEOSTAT_CONFIG_DIR: configDir };
  const controllers: Controller[] = [];
  const token = (): string => {
    const file = join(stateDir, "admin-token");
    if (!existsSync(file)) throw new Error(`no admin token in ${file}: has \`homeostat up\` started?`);
    return readFileSync(file, "utf8").trim();
  };
  const api = (method: string, path: string, body?: unknown, as?: string | null): Promise<Response> => {
    const change = method !== "GET" && method !== "HEAD";
    const secret = as === undefined ? token() : as;
    return fetch(`http://127.0.0.1:${apiPort}${path}`, {
      method,
      headers: {
        ...(change ? { "content-type": "application/json" } : {}),
        ...(secret === null ? {} : { authorization: `Bearer ${secret}` }),
      },
      ...(change ? { body: JSON.stringify(body ?? {}) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
  };
  return {
    dir,
    apiPort,
    stateDir,
    configDir,
    token,
    api,
    file(name, text) {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    },
    up(fleetFile, extraArgs = []) {
      const child = spawn(NODE, [BIN, "up", fleetFile, "--api-port", String(apiPort), ...extraArgs], {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, ...env },
      });
      let output = "";
      child.stdout?.on("data", (d: Buffer) => {
        output += d.toString();
      });
      child.stderr?.on("data", (d: Buffer) => {
        output += d.toString();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
        child.on("exit", (code, signal) => r({ code, signal })),
      );
      const controller = { child, output: () => output, exited };
      controllers.push(controller);
      return controller;
    },
    cli: (args, extraEnv = {}) => cli(args, { cwd: dir, env: { ...env, ...extraEnv } }),
    describeControllers: () =>
      controllers
        .map((c, i) => {
          const { exitCode, signalCode } = c.child;
          const state =
            exitCode === null && signalCode === null ? "running" : `exited ${exitCode ?? signalCode}`;
          return `up #${i + 1} (pid ${c.child.pid}, ${state}):\n${c.output().slice(-2_000)}`;
        })
        .join("\n") || "no up started",
    async get<T>(path: string): Promise<T> {
      const response = await api("GET", path);
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    },
    async cleanup() {
      for (const c of controllers) {
        if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill("SIGKILL");
      }
      await Promise.all(controllers.map((c) => c.exited));
      // Instances may run outside the sandbox (a release's cwd); the state directory knows them.
      if (existsSync(join(stateDir, "state.db"))) {
        await cli(["down", "--state-dir", stateDir, "--api-port", String(apiPort)], { cwd: dir, env }).catch(
          () => undefined,
        );
      }
      killProcessesUnder(dir);
      await waitFor(() => processesUnder(dir).length === 0, {
        timeoutMs: 10_000,
        what: `no process left in ${dir}`,
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * A maker of sandboxes that are all cleaned up after the calling file's tests, even when one
 * fails. Call it at the top level of a test file.
 */
export function sandboxesCleanedAfter(): () => Promise<Sandbox> {
  const boxes: Sandbox[] = [];
  after(async () => {
    await Promise.all(boxes.map((b) => b.cleanup()));
  });
  return async () => {
    const box = await sandbox();
    boxes.push(box);
    return box;
  };
}

/**
 * The status once `count` instances are ready and `also` holds (e.g. the data plane attached).
 * Polls the API; fails after `timeoutMs`.
 */
export async function readyStatus<T extends StatusDoc>(
  box: Sandbox,
  count: number,
  also: (status: T) => boolean = () => true,
  timeoutMs = 30_000,
): Promise<T> {
  try {
    return await waitFor(
      async () => {
        const status = await box.get<T>("/v1/status");
        const instances = allInstances(status);
        const ready = instances.length === count && instances.every((i) => i.state === "ready");
        return ready && also(status) ? status : null;
      },
      { timeoutMs, what: `${count} ready instances` },
    );
  } catch (error) {
    // Say why: a controller that never started (a port taken meanwhile) prints its reason.
    throw new Error(`${(error as Error).message}\n${box.describeControllers()}`, { cause: error });
  }
}

/** Pids of processes whose working directory is inside `dir`. */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const cwd = readlinkSync(`/proc/${pid}/cwd`);
      if (cwd === dir || cwd.startsWith(`${dir}/`)) pids.push(pid);
    } catch {
      // gone, or not ours to read
    }
  }
  return pids;
}

function killProcessesUnder(dir: string): void {
  for (const pid of processesUnder(dir)) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

export interface StatusInstance {
  name: string;
  service: string;
  state: string;
  pid: number | null;
  release: string | null;
  zone: string;
  port: number;
  reason: string;
  consecutiveFailures: number;
  crashLoop: boolean;
  nextStartAt: number | null;
}

export interface StatusDoc {
  services: { name: string; ready: number; replicas: number; state: string; instances: StatusInstance[] }[];
}

export function allInstances(status: StatusDoc): StatusInstance[] {
  return status.services.flatMap((s) => s.instances);
}

/**
 * One release of the demo app, as YAML lines under a service's `releases:` (indented by 6
 * spaces): `APP_VERSION` is the version, `env` adds to the environment, and `extra` are more
 * lines of the release's own (`requires: …`, `provides: …`), indented for it.
 */
export function demoRelease(version: string, env: Record<string, string> = {}, extra: string[] = []): string {
  return [
    `      ${version}:`,
    `        command: ${JSON.stringify(NODE)}`,
    `        args: [${JSON.stringify(APP)}, --port, "{port}", --name, "{instance}"]`,
    "        env:",
    `          APP_VERSION: ${version}`,
    ...Object.entries(env).map(([k, v]) => `          ${k}: "${v}"`),
    ...extra.map((line) => `        ${line}`),
  ].join("\n");
}

/**
 * The demo app's fast probes, as the `probes:` lines under `defaults:`: started within 10 s,
 * unready after two failed readiness checks 200 ms apart, restarted after three failed liveness
 * checks.
 */
export const DEMO_PROBES = `  probes:
    startup: { http: { path: /healthz }, interval: 100ms, timeout: 100ms, failureThreshold: 100 }
    readiness: { http: { path: /ready }, interval: 200ms, timeout: 150ms, failureThreshold: 2 }
    liveness: { http: { path: /healthz }, interval: 200ms, timeout: 150ms, failureThreshold: 3 }`;

/** A fleet running the demo app with fast probes, on free ports. */
export function demoFleetYaml(options: {
  name?: string;
  services: {
    name: string;
    replicas: number;
    basePort: number;
    env?: Record<string, string>;
    dependsOn?: string[];
    /** Front port of the data plane. */
    port?: number;
    /** YAML lines of the service's `traffic:` block, indented by 6 spaces. */
    traffic?: string;
    /** Extra releases: version → env. */
    releases?: Record<string, Record<string, string>>;
    release?: string;
  }[];
  restart?: string;
}): string {
  const services = options.services
    .map((s) =>
      [
        `  ${s.name}:`,
        `    replicas: ${s.replicas}`,
        `    basePort: ${s.basePort}`,
        ...(s.port === undefined ? [] : [`    port: ${s.port}`]),
        ...(s.traffic === undefined ? [] : ["    traffic:", s.traffic]),
        "    placement: { zones: [zone-a, zone-b, zone-c] }",
        `    dependsOn: [${(s.dependsOn ?? []).join(", ")}]`,
        `    release: ${s.release ?? "v1"}`,
        "    releases:",
        demoRelease("v1", s.env ?? {}),
        ...Object.entries(s.releases ?? {}).map(([version, extra]) => demoRelease(version, extra)),
      ].join("\n"),
    )
    .join("\n");
  return `version: 1
name: ${options.name ?? "e2e"}
defaults:
${DEMO_PROBES}
  restart:
${options.restart ?? "    backoff: { initial: 200ms, max: 2s, multiplier: 2, jitter: 0.1 }\n    crashLoop: { failures: 4, window: 60s }\n    stopGracePeriod: 2s\n    resetAfter: 3s"}
services:
${services}
`;
}

/**
 * A fleet file in `box` with one service `api` of three demo-app instances behind a front port,
 * on free ports; `traffic` is YAML for its `traffic:` block (lines indented by 6 spaces).
 */
export async function apiFleetOfThree(
  box: Sandbox,
  traffic?: string,
): Promise<{ file: string; port: number }> {
  const basePort = await freePortRange(6);
  const port = await freePort();
  const yaml = demoFleetYaml({
    services: [{ name: "api", replicas: 3, basePort, port, ...(traffic === undefined ? {} : { traffic }) }],
  });
  return { file: box.file("fleet.yaml", yaml), port };
}

/** Wait until `GET http://127.0.0.1:PORT/` answers 200 (a service's front port serving). */
export async function waitForServing(port: number, what: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => {
      const r = await fetch(`http://127.0.0.1:${port}/`).catch(() => null);
      await r?.arrayBuffer();
      return r?.status === 200;
    },
    { timeoutMs, what },
  );
}

/**
 * `yaml` with progressive deploys short enough for a test: two 1 s steps, a `soak` soak (2 s),
 * `minRequests` requests decide (5), a step gets `stepDeadline` (15 s) to be ready.
 */
export function withFastDeploys(
  yaml: string,
  o: { stepDeadline?: string; soak?: string; minRequests?: number } = {},
): string {
  return yaml.replace(
    "services:\n",
    [
      "  deploy:",
      "    steps: [50, 100]",
      "    stepDuration: 1s",
      `    stepDeadline: ${o.stepDeadline ?? "15s"}`,
      `    soak: ${o.soak ?? "2s"}`,
      `    analysis: { minRequests: ${o.minRequests ?? 5} }`,
      "services:",
      "",
    ].join("\n"),
  );
}

/** The environment a process runs with (Linux: /proc/PID/environ). */
export function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readFileSync(`/proc/${pid}/environ`, "utf8").split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** SIGKILL `box`'s controller (the fleet it started keeps running) and wait until its API is gone. */
export async function killController(box: Sandbox, what: string): Promise<void> {
  const status = await box.get<{ controller: { pid: number } }>("/v1/status");
  process.kill(status.controller.pid, "SIGKILL");
  await waitFor(
    async () => {
      try {
        await box.get("/healthz");
        return false;
      } catch {
        return true;
      }
    },
    { what },
  );
}

/** An event as `GET /v1/events` lists it: the fields these tests read. */
export interface EventDoc {
  type: string;
  at: number;
  service?: string;
  instance?: string;
  reason: string;
  message: string;
}

/** The events at or after `since` (ms since the epoch), of the controller's last 5000. */
export async function eventsSince(box: Sandbox, since: number): Promise<EventDoc[]> {
  return (await box.get<{ events: EventDoc[] }>("/v1/events?limit=5000")).events.filter((e) => e.at >= since);
}

/**
 * Events for a failure message, one per line (or per `separator`): `+Nms type instance reason:
 * message`, times counted from `from` (ms since the epoch).
 */
export function describeEvents(
  events: readonly Pick<EventDoc, "type" | "at" | "instance" | "reason" | "message">[],
  from: number,
  separator = "\n",
): string {
  return events
    .map((e) => `+${e.at - from}ms ${e.type}${e.instance ? ` ${e.instance}` : ""} ${e.reason}: ${e.message}`)
    .join(separator);
}

/** A recovery state as `GET /v1/status` gives it, for the fleet, a service or an instance. */
export interface RecoveryDoc {
  state: string;
  reasons: string[];
}
