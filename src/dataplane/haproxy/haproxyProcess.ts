/**
 * The fleet's managed HAProxy as a process: found, started in master-worker mode in its own
 * process group (so it outlives the data plane and the controller: static stability), adopted
 * again from its pid file and master socket, reloaded seamlessly, stopped softly.
 *
 * A reload through the master socket re-executes the master, which forks a new worker from the
 * configuration file; the listening sockets pass to it over the admin socket (`expose-fd
 * listeners`), so no connection is refused, and the old worker finishes what it serves. What the
 * new worker does NOT inherit: runtime changes. Servers' addresses, weights and states are dumped
 * (`show servers state`) to `paths.serverState` just before the reload and loaded by the new worker
 * (`server-state-file` + `load-server-state-from-file global` in the rendered configuration); maps
 * are read again from their files, so whoever sets a map at run time writes its file too.
 */

import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  accessSync,
  closeSync,
  constants,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import { promisify } from "node:util";
import { HomeostatError } from "../../errors.ts";
import { isProcessAlive, processesInGroup, processStartTime } from "../../lib/procStat.ts";
import { ensureHaproxyDir, type HaproxyPaths, haproxyPaths } from "./haproxyPaths.ts";
import { RuntimeApi } from "./runtimeApi.ts";

const run = promisify(execFile);

/** Where Debian installs it, and sbin directories a user's PATH often lacks. */
const EXTRA_DIRS = ["/usr/sbin", "/usr/local/sbin", "/sbin"];

/** How long a start or a reload may take before it is called failed. */
const READY_TIMEOUT_MS = 15_000;
const POLL_MS = 25;

/** An empty server-state file (its version line alone): the first worker starts from the configuration. */
const EMPTY_SERVER_STATE = "1\n";

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The haproxy binary: `HOMEOSTAT_HAPROXY` when set (an absolute path; null if it is not
 * executable, rather than silently using another one), else the first `haproxy` on PATH or in
 * /usr/sbin, /usr/local/sbin, /sbin. Null when there is none.
 */
export function findHaproxy(env: NodeJS.ProcessEnv = process.env): string | null {
  const chosen = env.HOMEOSTAT_HAPROXY;
  if (chosen !== undefined && chosen !== "") return isAbsolute(chosen) && executable(chosen) ? chosen : null;
  const dirs = [...(env.PATH ?? "").split(delimiter).filter((dir) => isAbsolute(dir)), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = join(dir, "haproxy");
    if (executable(candidate)) return candidate;
  }
  return null;
}

/** {@link findHaproxy}, or `HS_HAPROXY_MISSING` saying where it looked. */
export function requireHaproxy(env: NodeJS.ProcessEnv = process.env): string {
  const found = findHaproxy(env);
  if (found !== null) return found;
  const where = env.HOMEOSTAT_HAPROXY
    ? `HOMEOSTAT_HAPROXY=${env.HOMEOSTAT_HAPROXY} is not an executable absolute path`
    : `no haproxy on PATH or in ${EXTRA_DIRS.join(", ")}`;
  throw new HomeostatError(
    "HS_HAPROXY_MISSING",
    `the haproxy engine needs HAProxy: ${where} (Debian: apt-get install haproxy)`,
  );
}

/** The binary's version, e.g. `2.6.12-1+deb12u4`. */
export async function haproxyVersion(binary: string): Promise<string> {
  const { stdout } = await run(binary, ["-v"], { timeout: 10_000 });
  const match = /HAProxy version (\S+)/.exec(stdout);
  if (!match) throw new HomeostatError("HS_HAPROXY_MISSING", `${binary} -v does not say an HAProxy version`);
  return match[1]!;
}

/** `haproxy -c` of a configuration file; rejects with `HS_HAPROXY_CONFIG` and HAProxy's alerts. */
export async function checkHaproxyConfig(binary: string, file: string): Promise<void> {
  try {
    await run(binary, ["-c", "-f", file], { timeout: 30_000 });
  } catch (error) {
    const output = `${(error as { stdout?: string }).stdout ?? ""}${(error as { stderr?: string }).stderr ?? ""}`;
    throw new HomeostatError("HS_HAPROXY_CONFIG", `HAProxy rejects ${file}: ${alerts(output)}`, {
      details: { file, output },
      cause: error,
    });
  }
}

function alerts(output: string): string {
  const lines = output.split("\n").filter((line) => line.includes("[ALERT]"));
  return (lines.length > 0 ? lines : output.split("\n"))
    .join(" ")
    .replace(/\s+/g, " ")
    .trim()
    .slice(0, 2_000);
}

/** One process of `show proc` on the master CLI. */
export interface HaproxyProc {
  pid: number;
  type: "master" | "worker" | string;
  /** Reloads this process has lived through; for the master, all reloads. Null for an old worker's `[was: N]`. */
  reloads: number | null;
  /** The master's failed reloads. */
  failed?: number;
}

/** Parse the master CLI's `show proc` (2.6 layout: a header line, the master, `# workers`, …). */
export function parseShowProc(text: string): HaproxyProc[] {
  const procs: HaproxyProc[] = [];
  for (const line of text.split("\n")) {
    const match = /^(\d+)\s+(\S+)\s+(\d+|\[was: \d+\])(?:\s+\[failed: (\d+)\])?/.exec(line);
    if (!match) continue;
    const proc: HaproxyProc = {
      pid: Number(match[1]),
      type: match[2]!,
      reloads: match[3]!.startsWith("[") ? null : Number(match[3]),
    };
    if (match[4] !== undefined) proc.failed = Number(match[4]);
    procs.push(proc);
  }
  return procs;
}

/**
 * Poll `probe` until it returns a value (errors count as "not yet": HAProxy's sockets come and go
 * while it starts or re-executes), or `fatal` says to give up at once.
 */
async function until<T>(
  what: string,
  timeoutMs: number,
  probe: () => Promise<T | null>,
  fatal: () => Error | null = () => null,
): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    const stop = fatal();
    if (stop !== null) throw stop;
    try {
      const value = await probe();
      if (value !== null) return value;
    } catch (error) {
      last = error;
    }
    if (performance.now() > deadline) {
      throw new HomeostatError(
        "HS_HAPROXY_RUNTIME",
        `HAProxy: ${what} did not happen within ${timeoutMs}ms`,
        {
          cause: last ?? undefined,
        },
      );
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function writePrivate(file: string, text: string): void {
  const next = `${file}.next`;
  writeFileSync(next, text, { mode: 0o600 });
  renameSync(next, file);
}

/** HAProxy's alerts in its output file from byte `from` on (what one start or reload wrote). */
function outputSince(paths: HaproxyPaths, from: number): string {
  try {
    return alerts(readFileSync(paths.output).subarray(from).toString("utf8").slice(-4_000));
  } catch {
    return "";
  }
}

function outputSize(paths: HaproxyPaths): number {
  try {
    return statSync(paths.output).size;
  } catch {
    return 0;
  }
}

/** A start or reload HAProxy gave up on: a port it cannot bind is HS_PORT_IN_USE, the rest HS_HAPROXY_CONFIG. */
function refused(message: string, output: string): HomeostatError {
  const code = /cannot bind socket|Address already in use/i.test(output)
    ? "HS_PORT_IN_USE"
    : "HS_HAPROXY_CONFIG";
  return new HomeostatError(code, `${message}: ${output}`, { details: { output } });
}

export class HaproxyProcess {
  /** The master's pid: also the process group of every worker. */
  readonly pid: number;
  readonly binary: string;
  readonly paths: HaproxyPaths;
  /** The master CLI. */
  readonly master: RuntimeApi;
  /** The current worker's Runtime API. */
  readonly admin: RuntimeApi;
  readonly #startTime: string | null;
  #reloads: number;

  private constructor(o: { binary: string; paths: HaproxyPaths; pid: number; reloads: number }) {
    this.pid = o.pid;
    this.binary = o.binary;
    this.paths = o.paths;
    this.master = new RuntimeApi(o.paths.masterSocket);
    this.admin = new RuntimeApi(o.paths.adminSocket);
    this.#startTime = processStartTime(o.pid);
    this.#reloads = o.reloads;
  }

  /** Reloads the master has done since it started (as `show proc` last said). */
  get reloads(): number {
    return this.#reloads;
  }

  /**
   * Write `config`, check it, and start HAProxy detached (`haproxy -W -S <master.sock>,mode,600 -f
   * <cfg> -p <pid>`), in its own process group and session, its output in `paths.output`. Resolves
   * once its worker answers on the admin socket; rejects with `HS_HAPROXY_CONFIG` (configuration
   * refused, or HAProxy exited during start-up), `HS_PORT_IN_USE` (a port it cannot bind) or
   * `HS_HAPROXY_RUNTIME`.
   * The server-state file is emptied: a fresh HAProxy starts from placeholders and the engine
   * applies its snapshot.
   */
  static async start(o: { binary: string; paths: HaproxyPaths; config: string }): Promise<HaproxyProcess> {
    const { binary, paths } = o;
    ensureHaproxyDir(paths);
    writePrivate(paths.serverState, EMPTY_SERVER_STATE);
    writePrivate(paths.config, o.config);
    await checkHaproxyConfig(binary, paths.config);
    rmSync(paths.pidFile, { force: true });
    const output = openSync(paths.output, "w", 0o600);
    let child: ChildProcess;
    try {
      child = spawn(
        binary,
        ["-W", "-S", `${paths.masterSocket},mode,600`, "-f", paths.config, "-p", paths.pidFile],
        { detached: true, stdio: ["ignore", output, output] },
      );
    } finally {
      closeSync(output);
    }
    let exited: string | null = null;
    child.once("exit", (code, signal) => {
      exited = `exited (${signal ?? code}) while starting`;
    });
    child.once("error", (error) => {
      exited = `could not be started: ${error.message}`;
    });
    child.unref();
    const pid = child.pid;
    try {
      const reloads = await until(
        "the first worker answering",
        READY_TIMEOUT_MS,
        async () => {
          const procs = parseShowProc(await new RuntimeApi(paths.masterSocket).command("show proc"));
          const master = procs.find((p) => p.type === "master");
          const worker = procs.find((p) => p.type === "worker" && p.reloads === 0);
          // Another HAProxy on these sockets (one that should have been adopted) is not ours.
          if (master === undefined || master.pid !== pid || worker === undefined) return null;
          const info = await new RuntimeApi(paths.adminSocket).command("show info");
          if (!info.includes(`\nPid: ${worker.pid}\n`)) return null;
          return master.reloads ?? 0;
        },
        () => (exited === null ? null : refused(`HAProxy ${exited}`, outputSince(paths, 0))),
      );
      if (pid === undefined) throw new HomeostatError("HS_HAPROXY_RUNTIME", "HAProxy started without a pid");
      return new HaproxyProcess({ binary, paths, pid, reloads });
    } catch (error) {
      if (pid !== undefined && exited === null) killGroup(pid, "SIGKILL");
      throw error;
    }
  }

  /**
   * The HAProxy a previous data-plane process started, if it still runs: the pid file names a live
   * process whose command line names this configuration file, and the master socket answers
   * `show proc` with that pid as master. Null otherwise (nothing to adopt: start one).
   */
  static async adopt(o: { binary: string; paths: HaproxyPaths }): Promise<HaproxyProcess | null> {
    let pid: number;
    try {
      pid = Number(readFileSync(o.paths.pidFile, "utf8").trim());
    } catch {
      return null;
    }
    if (!Number.isInteger(pid) || pid <= 0 || !isProcessAlive(pid, null)) return null;
    try {
      // A recycled pid is some other program: its command line does not name our configuration.
      const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (!argv.includes(o.paths.config)) return null;
      const procs = parseShowProc(await new RuntimeApi(o.paths.masterSocket).command("show proc"));
      const master = procs.find((p) => p.type === "master");
      if (master?.pid !== pid) return null;
      return new HaproxyProcess({ binary: o.binary, paths: o.paths, pid, reloads: master.reloads ?? 0 });
    } catch {
      return null;
    }
  }

  /** The master runs (not a zombie, and the same process as when started or adopted). */
  alive(): boolean {
    return isProcessAlive(this.pid, this.#startTime);
  }

  /** Pids of the master and every worker (old ones included) still running. */
  processes(): number[] {
    return this.alive() ? processesInGroup(this.pid) : [];
  }

  /**
   * Seamless reload with a new configuration: check it (`haproxy -c`), make it the configuration
   * file, dump the servers' runtime state for the new worker, and `reload` through the master
   * socket. Resolves once the new worker answers on the admin socket. A configuration HAProxy
   * refuses rejects with `HS_HAPROXY_CONFIG` (`HS_PORT_IN_USE` when a port cannot be bound),
   * the previous file restored and the old worker still serving.
   *
   * Maps are not carried over: the new worker reads them from their files, so the map files must
   * say what is served (the engine writes them whenever it changes a map at run time).
   */
  async reload(config: string): Promise<void> {
    const { paths } = this;
    const candidate = `${paths.config}.candidate`;
    writeFileSync(candidate, config, { mode: 0o600 });
    try {
      await checkHaproxyConfig(this.binary, candidate);
    } finally {
      rmSync(candidate, { force: true });
    }
    const previous = readFileSync(paths.config, "utf8");
    const before = parseShowProc(await this.master.command("show proc")).find((p) => p.type === "master");
    if (before?.reloads === null || before?.reloads === undefined) {
      throw new HomeostatError("HS_HAPROXY_RUNTIME", "HAProxy's master CLI does not list the master");
    }
    writePrivate(paths.serverState, await this.admin.command("show servers state"));
    writePrivate(paths.config, config);
    const outputFrom = outputSize(paths);
    // The master answers nothing and closes: it re-executes itself.
    await this.master.command("reload");
    const after = await until("the reload", READY_TIMEOUT_MS, async () => {
      const procs = parseShowProc(await this.master.command("show proc"));
      const master = procs.find((p) => p.type === "master");
      if (master === undefined || master.reloads === null) return null;
      if ((master.failed ?? 0) > (before.failed ?? 0)) return { failed: true as const, master, procs };
      if (master.reloads <= before.reloads!) return null;
      return { failed: false as const, master, procs };
    });
    this.#reloads = after.master.reloads ?? this.#reloads;
    if (after.failed) {
      writePrivate(paths.config, previous);
      throw refused("HAProxy's reload failed, the old worker serves on", outputSince(paths, outputFrom));
    }
    const worker = after.procs.find((p) => p.type === "worker" && p.reloads === 0);
    if (worker === undefined)
      throw new HomeostatError("HS_HAPROXY_RUNTIME", "no new worker after the reload");
    await until("the new worker answering", READY_TIMEOUT_MS, async () =>
      (await this.admin.command("show info")).includes(`\nPid: ${worker.pid}\n`) ? true : null,
    );
  }

  /**
   * Soft stop: the master and its workers stop listening, finish what they serve and exit
   * (SIGUSR1; an idle keep-alive connection ends at its next request or its timeout). What still
   * runs after `deadlineMs` is stopped hard (SIGTERM to the master: connections closed), then
   * killed (SIGKILL to the process group). Resolves when no process of the group is left; the
   * pid file and sockets are removed.
   */
  async stop(deadlineMs: number): Promise<void> {
    const group = this.pid;
    const gone = async (): Promise<true | null> => (processesInGroup(group).length === 0 ? true : null);
    // Not alive: the master is gone (or is another process now), but a worker it left behind would still hold the ports.
    if (this.alive()) {
      signal(this.pid, "SIGUSR1");
      if (!(await until("the soft stop", deadlineMs, gone).catch(() => false))) {
        signal(this.pid, "SIGTERM");
        await until("the hard stop", 1_000, gone).catch(() => false);
      }
    }
    if ((await gone()) === null) {
      killGroup(group, "SIGKILL");
      await until("the processes killed", 5_000, gone);
    }
    for (const file of [this.paths.pidFile, this.paths.masterSocket, this.paths.adminSocket]) {
      rmSync(file, { force: true });
    }
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

function killGroup(pgid: number, sig: NodeJS.Signals): void {
  if (processesInGroup(pgid).length === 0) return;
  signal(-pgid, sig);
}

/**
 * Stop the managed HAProxy of the fleet whose state is in `stateDir` when nothing drives it any
 * more (`homeostat down` after the controller and the data plane both died: HAProxy outlives them
 * by design). Requests in flight may finish until `deadlineMs`. Returns its pid, or null when none
 * runs (or the binary is gone, so it cannot be one of ours to adopt).
 */
export async function stopOrphanedHaproxy(stateDir: string, deadlineMs: number): Promise<number | null> {
  const binary = findHaproxy();
  if (binary === null) return null;
  const running = await HaproxyProcess.adopt({ binary, paths: haproxyPaths(stateDir) });
  if (running === null) return null;
  await running.stop(deadlineMs);
  return running.pid;
}
