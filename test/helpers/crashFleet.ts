/**
 * The crash-safety harness (issue 15 item 4): a real fleet brought up with `homeostat up` whose
 * controller runs with the crash-point hook armed from a file (src/controller/crashPoints.ts), so
 * one fleet serves a whole catalogue: arm a boundary, trigger the operation, see the controller
 * SIGKILL itself there, bring up the next controller on the same state directory, and check what
 * it left — the operation completed or compensated, no side effect carried out twice (from the
 * journal), every process of the fleet known to the store and none twice (from /proc: the
 * driver's own record, the instance log each process writes to), and what the data plane serves
 * (asked through its own feed socket) consistent with the store.
 */

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { CRASH_MARKER } from "../../src/controller/crashPoints.ts";
import { inspectDataPlane } from "../../src/dataplane/inspect.ts";
import {
  allInstances,
  type Controller,
  NODE,
  processesUnder,
  REPO,
  type Sandbox,
  type StatusDoc,
  sandbox,
  waitForServing,
} from "./e2e.ts";
import { telling, upOnFreePorts } from "./fleetControl.ts";
import { waitFor } from "./waitFor.ts";

/** A journal entry as `GET /v1/journal` gives it. */
export interface JournalEntry {
  id: number;
  at: number;
  action: string;
  target: string;
  reason: string;
  data?: unknown;
  result: { at: number; ok: boolean; detail: string } | null;
}

/** What the data plane serves for a service, as it says itself. */
export interface Served {
  endpoints: { instance: string; release: string; port: number; draining: boolean }[];
  weights: Record<string, number> | null;
  zoneShares: Record<string, number>;
}

/** The status fields the harness reads. */
export interface CrashStatus extends StatusDoc {
  controller: { pid: number };
  dataPlane?: { pid: number | null; connected: boolean; appliedVersion: number };
}

export interface CrashFleetOptions {
  /** The fleet file for the instance port range starting at `basePort` and front port `port`. */
  yaml: (basePort: number, port: number) => string;
  /** Instance ports to reserve (2 × replicas: both banks). */
  slots: number;
  /** Instances ready when the fleet has come up. */
  instances: number;
  /** Requests per second of version-recording load through the front port (0: none). */
  rps: number;
}

/** One crash: where it happened, how long each part took. */
export interface CrashCycle {
  boundary: string;
  /** When the controller was seen dead (epoch ms). */
  diedAt: number;
  /** ms from the trigger (or the last restart) to the controller's death, and from its death to the next one's API. */
  toCrashMs: number;
  restartMs: number;
}

/**
 * What a `settled` check throws when the operation ended in a way that will not change (e.g. a
 * deploy that rolled back): the run fails at once with it, instead of waiting out its deadline.
 * Any other error of the check (the API unreachable while a controller restarts) means "not yet".
 */
export class SettledOtherwise extends Error {}

/** One operation run through crashes. */
export interface OperationRun {
  what: string;
  /** The journal's last id before the operation was triggered: its entries come after. */
  journalFrom: number;
  crashes: CrashCycle[];
  /** From the trigger to settled. */
  ms: number;
}

/** One request of the load: when it was sent, its status, who answered or what failed it. */
export interface LoadRecord {
  at: number;
  status: number;
  /** The demo app's version that answered (200s). */
  version: string | null;
  /** The demo app's injected fault that failed it. */
  fault: string | null;
  /** The data plane's own error (`no-upstream: all-ejected`, `shed: …`), or what failed the request. */
  error: string | null;
}

export interface CrashLoad {
  records: LoadRecord[];
  stop(): Promise<void>;
}

/** Open-loop GETs at about `rps` through the front port until stopped (at most 100,000). */
function crashLoad(port: number, rps: number): CrashLoad {
  const records: LoadRecord[] = [];
  let running = true;
  const inFlight = new Set<Promise<void>>();
  const timer = setInterval(() => {
    if (!running || records.length > 100_000) return;
    const at = Date.now();
    const p = fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(10_000) })
      .then(async (r) => {
        const body = (await r.json().catch(() => ({}))) as {
          version?: string;
          fault?: string;
          error?: string;
          reason?: string;
        };
        const error =
          body.error === undefined ? null : `${body.error}${body.reason ? `: ${body.reason}` : ""}`;
        records.push({
          at,
          status: r.status,
          version: body.version ?? null,
          fault: body.fault ?? null,
          error,
        });
      })
      .catch((error: unknown) => {
        records.push({ at, status: 0, version: null, fault: null, error: String(error) });
      })
      .finally(() => inFlight.delete(p));
    inFlight.add(p);
  }, 1000 / rps);
  return {
    records,
    async stop() {
      running = false;
      clearInterval(timer);
      await Promise.all([...inFlight]);
    },
  };
}

/** A `homeostat` process with the CLI loaded, waiting for its argv (warmController.ts). */
interface Standby {
  pid: number | undefined;
  go(argv: string[]): Promise<Controller>;
}

/** Start a standby in `box` (cwd and environment as `box.up` gives them). */
function warmController(box: Sandbox): Standby {
  const child = spawn(NODE, [join(REPO, "test/helpers/warmController.ts")], {
    cwd: box.dir,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, HOMEOSTAT_CONFIG_DIR: box.configDir },
  });
  let output = "";
  const spawnedAt = performance.now();
  child.stdout?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on("exit", (code, signal) => resolve({ code, signal })),
  );
  return {
    pid: child.pid,
    async go(argv) {
      // Loading takes one to several seconds on a busy machine; it was started long before.
      const warm = waitFor(() => output.includes("warm\n") || child.exitCode !== null, {
        timeoutMs: 60_000,
        what: "a warm controller",
      }).then(() => {
        if (child.exitCode !== null) throw new Error(`the warm controller exited ${child.exitCode}`);
      });
      await warm.catch((error: unknown) => {
        throw new Error(
          `${(error as Error).message} (pid ${child.pid}, exit ${child.exitCode ?? child.signalCode}, ${Math.round(performance.now() - spawnedAt)} ms after its spawn); it said: ${output.slice(-2_000)}`,
          { cause: error },
        );
      });
      output = "";
      child.stdin?.end(`${JSON.stringify(argv)}\n`);
      return { child, output: () => output, exited };
    },
  };
}

export class CrashFleet {
  readonly box: Sandbox;
  readonly file: string;
  readonly port: number;
  readonly crashFile: string;
  load: CrashLoad | null;
  controller: Controller;
  readonly runs: OperationRun[] = [];
  /** Processes with the CLI loaded, waiting to take over (see warmController.ts). */
  #standbys: Standby[] = [];

  private constructor(o: {
    box: Sandbox;
    file: string;
    port: number;
    crashFile: string;
    controller: Controller;
    load: CrashLoad | null;
  }) {
    this.box = o.box;
    this.file = o.file;
    this.port = o.port;
    this.crashFile = o.crashFile;
    this.controller = o.controller;
    this.load = o.load;
  }

  /**
   * Bring the fleet up in a new sandbox with the hook on (disarmed), wait until `instances` are
   * ready and the front port serves, then start the load.
   */
  static async start(o: CrashFleetOptions): Promise<CrashFleet> {
    const box = await sandbox("homeostat-crash-");
    try {
      const crashFile = join(box.dir, "crash-at");
      writeFileSync(crashFile, "");
      // Inherited by every `up` this test process starts (one fleet per test file).
      process.env.HOMEOSTAT_TEST_HOOKS = "1";
      process.env.HOMEOSTAT_CRASH_AT_FILE = crashFile;
      const { controller, port, file } = await upOnFreePorts(box, o.slots, o.yaml);
      await telling(controller, () => waitForServing(port, "the crash fleet serving", 90_000));
      const fleet = new CrashFleet({ box, file, port, crashFile, controller, load: null });
      await fleet.steady(o.instances, () => true, "the crash fleet ready", 90_000);
      // Warmed once the fleet is up, not competing with its start for the CPU.
      fleet.#standbys = [warmController(box), warmController(box)];
      fleet.load = o.rps > 0 ? crashLoad(port, o.rps) : null;
      fleet.#startTrace();
      return fleet;
    } catch (error) {
      await box.cleanup();
      throw error;
    }
  }

  async stop(): Promise<void> {
    if (this.#tracer !== null) clearInterval(this.#tracer);
    await this.load?.stop();
    // HOMEOSTAT_CRASH_ARTIFACTS=DIR keeps the state directory's logs and events (for a failure).
    const keep = process.env.HOMEOSTAT_CRASH_ARTIFACTS;
    if (keep !== undefined && keep !== "") {
      const to = join(keep, `${basename(this.box.dir)}`);
      mkdirSync(to, { recursive: true });
      cpSync(this.box.stateDir, to, { recursive: true, filter: (src) => !src.endsWith(".sock") });
      const events = await this.box.get("/v1/events?limit=10000").catch(() => null);
      if (events !== null) writeFileSync(join(to, "events.json"), JSON.stringify(events, null, 1));
    }
    // The standby is a process in the sandbox too: cleanup kills it with the rest.
    await this.box.cleanup();
  }

  /** The status now. */
  status(): Promise<CrashStatus> {
    return this.box.get<CrashStatus>("/v1/status");
  }

  /**
   * Wait until exactly `count` instances are ready (none starting, stopping or busy) and `also`
   * holds of the status; with a message that says what `up` printed when it does not come.
   */
  async steady(
    count: number,
    also: (status: CrashStatus) => boolean | Promise<boolean>,
    what: string,
    timeoutMs = 45_000,
  ): Promise<CrashStatus> {
    return await telling(this.controller, () =>
      waitFor(
        async () => {
          const status = await this.status().catch(() => null);
          if (status === null) return null;
          const instances = allInstances(status);
          if (instances.length !== count || !instances.every((i) => i.state === "ready")) return null;
          if (status.dataPlane !== undefined && !status.dataPlane.connected) return null;
          return (await also(status)) ? status : null;
        },
        { timeoutMs, what },
      ),
    );
  }

  /** The journal's newest entries (at most `limit`), oldest first. */
  async journal(limit = 2_000): Promise<JournalEntry[]> {
    return (await this.box.get<{ journal: JournalEntry[] }>(`/v1/journal?limit=${limit}`)).journal;
  }

  /**
   * Run one operation with `armed` boundaries armed: `trigger` it (its failure is expected when
   * the controller dies answering it), and each time the controller SIGKILLs itself at one of them
   * (it says which on stderr first), bring up the next controller on the same state directory,
   * armed with the boundaries not crashed at yet, until `settled` holds (the operation finished and
   * the fleet is steady; it throws {@link SettledOtherwise} when it never will). Crashed boundaries
   * are removed from `armed`. Disarmed on return.
   */
  async runOperation(o: {
    armed: Set<string>;
    trigger: () => Promise<unknown>;
    settled: () => Promise<boolean>;
    what: string;
    timeoutMs?: number;
    /** Crashes at most in this run (then the next controller runs disarmed): keeps a run short. */
    maxCrashes?: number;
  }): Promise<OperationRun> {
    const journalFrom = (await this.journal(1)).at(-1)?.id ?? 0;
    const startedAt = Date.now();
    const deadline = startedAt + (o.timeoutMs ?? 150_000);
    const maxCrashes = o.maxCrashes ?? 4;
    const crashes: CrashCycle[] = [];
    this.#arm(o.armed);
    let triggered: Promise<unknown> = o.trigger().catch((error: unknown) => error);
    let lastAt = startedAt;
    for (;;) {
      const dying = this.controller;
      const outcome = await Promise.race([
        dying.exited.then(() => "died" as const),
        (async () => {
          const gone = () => dying.child.exitCode !== null || dying.child.signalCode !== null;
          while (Date.now() < deadline && !gone()) {
            // A request that fails while a controller restarts is "not yet"; a verdict is final.
            const settled = await o.settled().catch((error: unknown) => {
              if (error instanceof SettledOtherwise) throw error;
              return false;
            });
            if (settled) return "settled" as const;
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          return gone() ? ("died" as const) : ("deadline" as const);
        })(),
      ]);
      if (outcome === "settled") break;
      if (outcome === "deadline") {
        throw new Error(
          `${o.what}: not settled within ${Math.round((deadline - startedAt) / 1000)} s (crashed at ${crashes.map((c) => c.boundary).join(", ") || "nothing"}; still armed: ${[...o.armed].join(", ")})\n--- homeostat up said ---\n${dying.output().slice(-6_000)}`,
        );
      }
      const exit = await dying.exited;
      const said = dying.output();
      const marker = new RegExp(`${CRASH_MARKER} ([a-z.-]+)#(\\d+) pid \\d+`).exec(said);
      assert.ok(
        marker !== null && exit.signal === "SIGKILL",
        `${o.what}: the controller exited ${JSON.stringify(exit)} without crossing an armed boundary:\n${said.slice(-4_000)}`,
      );
      const boundary = marker[1]!;
      assert.ok(o.armed.delete(boundary), `${o.what}: died at ${boundary}, which was not armed`);
      const diedAt = Date.now();
      this.#arm(crashes.length + 1 < maxCrashes ? o.armed : new Set());
      await triggered;
      triggered = Promise.resolve();
      const next = await this.#takeOver();
      this.controller = next;
      // Its API answering, or its own crash (armed, it may die recovering before it answers).
      await Promise.race([
        next.exited,
        telling(next, () =>
          waitFor(
            async () => next.child.exitCode !== null || (await this.status().catch(() => null)) !== null,
            {
              timeoutMs: 30_000,
              what: "the next controller's API",
            },
          ),
        ),
      ]);
      crashes.push({ boundary, diedAt, toCrashMs: diedAt - lastAt, restartMs: Date.now() - diedAt });
      lastAt = Date.now();
    }
    this.#arm(new Set());
    await triggered;
    const run = { what: o.what, journalFrom, crashes, ms: Date.now() - startedAt };
    this.runs.push(run);
    return run;
  }

  /**
   * The next controller: the oldest warm standby, told to run `up`; a new one starts warming up.
   * Two are kept, so crashes in quick succession still find one whose modules are loaded.
   */
  async #takeOver(): Promise<Controller> {
    const standby = this.#standbys.shift() ?? warmController(this.box);
    this.#standbys.push(warmController(this.box));
    return await standby.go(["up", this.file, "--api-port", String(this.box.apiPort)]);
  }

  #arm(boundaries: ReadonlySet<string>): void {
    writeFileSync(this.crashFile, [...boundaries].join(","));
  }

  /**
   * No side effect ran twice since `journalFrom`: every start and stop has a result (none left
   * open), and each instance was started and stopped successfully at most once — exactly the
   * instances in `expected` when given.
   */
  async assertJournal(
    journalFrom: number,
    expected: { starts: string[]; stops: string[] },
    context: string,
  ): Promise<void> {
    const entries = (await this.journal()).filter((e) => e.id > journalFrom);
    const open = entries.filter((e) => e.result === null);
    assert.deepEqual(
      open.map((e) => `${e.action} ${e.target}`),
      [],
      `${context}: journal intents left without a result`,
    );
    for (const action of ["start", "stop"] as const) {
      const done = entries
        .filter((e) => e.action === action && e.result?.ok === true)
        .map((e) => e.target)
        .sort();
      const want = [...(action === "start" ? expected.starts : expected.stops)].sort();
      assert.deepEqual(
        done,
        want,
        `${context}: instances ${action === "start" ? "started" : "stopped"} (journal results ok): ${describe(entries)}`,
      );
    }
  }

  /**
   * The processes of the fleet, from /proc: every live process whose stdout is an instance log
   * of this state directory, grouped by instance and process group; and everything else running
   * in the sandbox.
   */
  fleetProcesses(): { groups: Map<string, Set<number>>; members: Set<number> } {
    const logs = `${join(this.box.stateDir, "logs")}/`;
    const groups = new Map<string, Set<number>>();
    const members = new Set<number>();
    for (const entry of readdirSync("/proc")) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      let target: string;
      let stat: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/1`);
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      if (!target.startsWith(logs) || !target.endsWith(".log")) continue;
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] === "Z") continue;
      const instance = target.slice(logs.length, -".log".length);
      const pgid = Number(fields[2]);
      groups.set(instance, new Set([...(groups.get(instance) ?? []), pgid]));
      members.add(pid);
    }
    return { groups, members };
  }

  /**
   * Nothing orphaned or duplicated: each instance the store records with a pid runs as exactly
   * one process group led by that pid; no instance process runs that the store does not know;
   * every process in the sandbox is the controller, the data plane or one of those.
   */
  async assertProcessesMatchStore(context: string): Promise<void> {
    await waitFor(
      async () => {
        const status = await this.status();
        const recorded = new Map(
          allInstances(status)
            .filter((i) => i.pid !== null)
            .map((i) => [i.name, i.pid!]),
        );
        const { groups, members } = this.fleetProcesses();
        const problems: string[] = [];
        for (const [instance, pgids] of groups) {
          const pid = recorded.get(instance);
          if (pid === undefined)
            problems.push(`${instance} runs (groups ${[...pgids]}) unknown to the store`);
          else if (pgids.size !== 1 || !pgids.has(pid))
            problems.push(`${instance}: store pid ${pid}, running groups ${[...pgids]}`);
        }
        for (const [instance, pid] of recorded)
          if (!groups.has(instance)) problems.push(`${instance}: store pid ${pid} does not run`);
        const known = new Set([
          status.controller.pid,
          status.dataPlane?.pid ?? -1,
          ...this.#standbys.map((standby) => standby.pid ?? -1),
          ...members,
        ]);
        const others = processesUnder(this.box.dir).filter((pid) => !known.has(pid) && alive(pid));
        if (others.length > 0) problems.push(`other processes in the sandbox: ${others.map(describePid)}`);
        if (problems.length === 0) return true;
        throw new Error(problems.join("; "));
      },
      { timeoutMs: 10_000, what: `${context}: the fleet's processes to match the store` },
    );
  }

  /** What the data plane serves for `service`, asked through its own feed socket. */
  async served(service = "api"): Promise<Served> {
    const inspection = await inspectDataPlane(this.box.stateDir);
    const state = inspection.services[service] as unknown as Served | undefined;
    assert.ok(state, `the data plane serves no ${service}: ${JSON.stringify(inspection.services)}`);
    return {
      endpoints: state.endpoints.map((e) => ({
        instance: e.instance,
        release: e.release,
        port: e.port,
        draining: e.draining,
      })),
      weights: state.weights,
      zoneShares: state.zoneShares ?? {},
    };
  }

  /** Wait until what the data plane serves satisfies `check` (it throws while it does not). */
  async expectServed(check: (served: Served) => void, what: string): Promise<Served> {
    return await waitFor(
      async () => {
        const served = await this.served();
        check(served);
        return served;
      },
      { timeoutMs: 15_000, what },
    );
  }

  /**
   * What the data plane served over time (HOMEOSTAT_CRASH_TRACE=1): every change of its endpoints,
   * weights and zone shares, sampled every 200 ms, for a failure's message.
   */
  readonly trace: { at: number; served: string }[] = [];
  #tracer: NodeJS.Timeout | null = null;

  #startTrace(): void {
    if (process.env.HOMEOSTAT_CRASH_TRACE !== "1") return;
    let busy = false;
    this.#tracer = setInterval(() => {
      if (busy) return;
      busy = true;
      void this.served()
        .then((s) => {
          const served = `${s.endpoints.map((e) => `${e.instance}@${e.release}${e.draining ? "(draining)" : ""}`).join(" ")} weights ${JSON.stringify(s.weights)} zones ${JSON.stringify(s.zoneShares)}`;
          if (this.trace.at(-1)?.served !== served) this.trace.push({ at: Date.now(), served });
        })
        .catch(() => undefined)
        .finally(() => {
          busy = false;
        });
    }, 200);
  }

  /**
   * Requests of the load sent since `since` that failed (status ≠ 200) and `also` does not
   * excuse, each with the crash before it, for the message.
   */
  failedSince(
    since: number,
    run: OperationRun,
    also: (record: LoadRecord) => boolean = () => false,
  ): string[] {
    return (this.load?.records ?? [])
      .filter((r) => r.at >= since && r.status !== 200 && !also(r))
      .sort((a, b) => a.at - b.at)
      .map((r) => {
        const crash = run.crashes.findLast((c) => c.diedAt <= r.at);
        const when =
          crash === undefined
            ? "before any crash"
            : `${r.at - crash.diedAt} ms after the crash at ${crash.boundary}`;
        const served = this.trace.findLast((x) => x.at <= r.at);
        return `${r.status}${r.fault === null ? "" : ` (${r.fault})`}${r.error === null ? "" : ` [${r.error}]`} sent ${when}${served === undefined ? "" : `; served: ${served.served}`}`;
      });
  }
}

function describe(entries: JournalEntry[]): string {
  return entries
    .filter((e) => e.action === "start" || e.action === "stop")
    .map(
      (e) =>
        `#${e.id} ${e.action} ${e.target} → ${e.result === null ? "open" : `${e.result.ok}: ${e.result.detail}`}`,
    )
    .join("; ");
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

function describePid(pid: number): string {
  try {
    return `${pid} (${readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim()})`;
  } catch {
    return String(pid);
  }
}
