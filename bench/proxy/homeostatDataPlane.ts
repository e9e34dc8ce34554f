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
 */

import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { dataPlanePaths } from "../../src/dataplane/paths.ts";
import { fleetOrThrow, loadFleetFile, type TrafficSpec } from "../../src/spec/index.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { ProcessLedger } from "../foundation/processes.ts";
import { benchFleetYaml } from "./benchFleet.ts";
import { benchSnapshot } from "./benchSnapshot.ts";
import { Child } from "./child.ts";
import { onCpus } from "./cpus.ts";
import { FeedController } from "./feedController.ts";

const HERE = dirname(fileURLToPath(import.meta.url));
export const DATA_PLANE_MAIN = join(HERE, "..", "..", "src", "dataplane", "main.ts");
const LOOP_DELAY_PRELOAD = pathToFileURL(join(HERE, "dataPlaneLoopDelay.ts")).href;

export interface HomeostatDataPlane {
  child: Child;
  feed: FeedController;
  /** The traffic settings sent in the snapshot. */
  traffic: TrafficSpec;
  /** The snapshot pushed, written out for the results. */
  snapshotFile: string;
  stop(): Promise<void>;
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
): Promise<HomeostatDataPlane> {
  const fleetFile = join(home, "fleet.yaml");
  writeFileSync(fleetFile, benchFleetYaml(port, upstreamPort));
  const service = fleetOrThrow(await loadFleetFile(fleetFile)).services[0]!;

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
  const stop = async (): Promise<void> => {
    feed?.close();
    await child.stop(10_000);
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
      service: service.name,
      port,
      upstreamPort,
      traffic: service.traffic,
      controller: { pid: process.pid, startedAt: feed.startedAt },
      issuedAt: Date.now(),
    });
    const snapshotFile = join(home, "snapshot.json");
    writeFileSync(snapshotFile, `${JSON.stringify(snapshot, null, 2)}\n`);
    await feed.push(snapshot);
    await child.waitListening(port);
    const attached = feed;
    return { child, feed: attached, traffic: service.traffic, snapshotFile, stop };
  } catch (error) {
    await stop();
    throw new Error(`the Homeostat data plane did not start:\n${child.output()}`, { cause: error });
  }
}
