/**
 * The Homeostat contender as users run it: the data-plane process (`src/dataplane/main.ts
 * --state-dir DIR`, the entry point the controller starts), fed over its config feed by the
 * bench's fake controller (feedController.ts) with one snapshot: the bench service on its port,
 * the traffic settings of the bench fleet file (benchFleet.ts, read by the spec loader as the
 * controller reads them), one endpoint, the upstream. The fake controller keeps reading the data
 * plane's reports (every 250 ms) until the contender is stopped, so that work is in every run.
 *
 * Ready when the snapshot is acknowledged (every listener bound) and the port accepts. The data
 * plane prints nothing on stdout (its log is `DIR/dataplane/dataplane.log`); the bench preloads
 * dataPlaneLoopDelay.ts for its event-loop delay on SIGUSR2. Stopped by closing the feed, then
 * SIGTERM (the data plane drains and exits).
 *
 * With `engine: "haproxy"` the service's traffic block says `engine: haproxy`: the data plane
 * starts the managed HAProxy (detached, in its own process group, pinned to the data plane's CPU
 * because it inherits its affinity) and HAProxy binds the port. Its master and worker are counted
 * as the contender's CPU together with the data plane (which reads HAProxy's log line for every
 * request), and stopped by the bench after the data plane: the engine keeps HAProxy running past
 * the data plane's exit on purpose (static stability).
 */

import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { haproxyPaths } from "../../src/dataplane/haproxy/haproxyPaths.ts";
import { dataPlanePaths } from "../../src/dataplane/paths.ts";
import { fleetOrThrow, loadFleetFile, type TrafficSpec } from "../../src/spec/index.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { descendantsOf } from "../dataplane/homeostat.ts";
import {
  identify,
  type ProcessIdentity,
  type ProcessLedger,
  signalIfRunning,
  stillRunning,
} from "../foundation/processes.ts";
import { benchFleetYaml } from "./benchFleet.ts";
import { benchSnapshot } from "./benchSnapshot.ts";
import { Child } from "./child.ts";
import { onCpus } from "./cpus.ts";
import { FeedController } from "./feedController.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DATA_PLANE_MAIN = join(HERE, "..", "..", "src", "dataplane", "main.ts");
const LOOP_DELAY_PRELOAD = pathToFileURL(join(HERE, "dataPlaneLoopDelay.ts")).href;
/** The bench fleet's one service (benchFleet.ts). */
const SERVICE = "bench";

export interface HomeostatDataPlane {
  child: Child;
  feed: FeedController;
  /** The traffic settings sent in the snapshot. */
  traffic: TrafficSpec;
  /** The snapshot pushed, written out for the results. */
  snapshotFile: string;
  /** The processes whose CPU is the contender's (the data plane, and the managed HAProxy's). */
  cpuPids(): number[];
  stop(): Promise<void>;
}

/** The bench fleet's resolved traffic settings, read by the spec loader (fleet file in `home`). */
export async function benchTraffic(
  home: string,
  port: number,
  upstreamPort: number,
  engine: "embedded" | "haproxy" = "embedded",
): Promise<TrafficSpec> {
  const fleetFile = join(home, "fleet.yaml");
  writeFileSync(fleetFile, benchFleetYaml(port, upstreamPort, engine));
  return fleetOrThrow(await loadFleetFile(fleetFile)).services[0]!.traffic;
}

/** The managed HAProxy's pid file under the data plane's state dir (the engine's layout). */
function haproxyPidFile(stateDir: string): string {
  return haproxyPaths(stateDir).pidFile;
}

/** The master's pid from its pid file, or null while there is none. */
function readMasterPid(stateDir: string): number | null {
  try {
    const pid = Number(readFileSync(haproxyPidFile(stateDir), "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/**
 * Stop the managed HAProxy of the state dir `stateDir` if it still runs (the engine leaves it
 * running when the data plane exits, by design); returns its master's pid when there was one to
 * stop, else null.
 */
export async function stopManagedHaproxyIn(stateDir: string, ledger: ProcessLedger): Promise<number | null> {
  const pid = readMasterPid(stateDir);
  if (pid === null) return null;
  const master = identify(pid);
  if (master.startTime === null) return null;
  ledger.note(pid);
  await stopManagedHaproxy(master);
  return pid;
}

/** SIGTERM (the master stops its workers), then SIGKILL after `graceMs`; resolves once gone. */
async function stopManagedHaproxy(master: ProcessIdentity, graceMs = 5_000): Promise<void> {
  const workers = descendantsOf(master.pid).map(identify);
  if (!signalIfRunning(master, "SIGTERM")) return;
  await waitFor(() => !stillRunning(master), {
    timeoutMs: graceMs,
    intervalMs: 20,
    what: "HAProxy's exit",
  }).catch(() => {
    signalIfRunning(master, "SIGKILL");
  });
  for (const worker of workers) signalIfRunning(worker, "SIGKILL");
}

/**
 * @param home the contender's directory: the fleet file, the snapshot sent, and the data plane's
 * state dir (`home/state`) go there
 * @param cpus `taskset -c` list for the data-plane process (null: not pinned)
 */
export async function startHomeostatDataPlane(
  port: number,
  upstreamPort: number,
  home: string,
  ledger: ProcessLedger,
  cpus: string | null,
  engine: "embedded" | "haproxy" = "embedded",
): Promise<HomeostatDataPlane> {
  const traffic = await benchTraffic(home, port, upstreamPort, engine);

  const stateDir = join(home, "state");
  const feedPath = dataPlanePaths(stateDir).feed;
  const child = new Child(
    "homeostat data plane",
    ...onCpus(cpus, process.execPath, [
      "--import",
      LOOP_DELAY_PRELOAD,
      DATA_PLANE_MAIN,
      "--state-dir",
      stateDir,
    ]),
    { ledger },
  );
  let feed: FeedController | null = null;
  let master: ProcessIdentity | null = null;
  const stop = async (): Promise<void> => {
    feed?.close();
    await child.stop(10_000);
    master ??= adoptMaster();
    if (master !== null) await stopManagedHaproxy(master);
  };
  // The managed HAProxy, once its pid file names a live process: noted in the ledger (so that a
  // failed run still sweeps it) with its workers.
  const adoptMaster = (): ProcessIdentity | null => {
    const pid = engine === "haproxy" ? readMasterPid(stateDir) : null;
    if (pid === null) return null;
    const id = identify(pid);
    if (id.startTime === null) return null;
    ledger.note(pid);
    for (const worker of descendantsOf(pid)) ledger.note(worker);
    return id;
  };
  try {
    // The feed socket appears once the process serves (it binds it last, then writes process.json).
    feed = await waitFor(
      async () => {
        if (!child.running) throw new Error(`the data plane exited:\n${child.output()}`);
        return await FeedController.attach(feedPath).catch(() => null);
      },
      { timeoutMs: 20_000, intervalMs: 20, what: `the data plane's feed at ${feedPath}` },
    );
    const snapshot = benchSnapshot({
      service: SERVICE,
      port,
      upstreamPort,
      traffic,
      controller: { pid: process.pid, startedAt: feed.startedAt },
      issuedAt: Date.now(),
    });
    const snapshotFile = join(home, "snapshot.json");
    writeFileSync(snapshotFile, `${JSON.stringify(snapshot, null, 2)}\n`);
    await feed.push(snapshot);
    await child.waitListening(port);
    if (engine === "haproxy") {
      master = await waitFor(async () => adoptMaster(), {
        timeoutMs: 10_000,
        intervalMs: 20,
        what: `the managed HAProxy's pid file ${haproxyPidFile(stateDir)}`,
      });
    }
    const attached = feed;
    const cpuPids = (): number[] =>
      master === null ? [child.pid] : [child.pid, master.pid, ...descendantsOf(master.pid)];
    return { child, feed: attached, traffic, snapshotFile, cpuPids, stop };
  } catch (error) {
    await stop();
    throw new Error(`the Homeostat data plane did not start:\n${child.output()}`, { cause: error });
  }
}
