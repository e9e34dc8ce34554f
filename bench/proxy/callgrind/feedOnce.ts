/**
 * The proxy bench's fake controller for a data-plane process started by hand (count.sh starts it
 * under callgrind, too slow for homeostatDataPlane.ts's start-up timeout): waits for the feed
 * socket of `STATE_DIR`, pushes the bench snapshot (benchSnapshot.ts, the bench fleet's traffic
 * settings) and keeps reading the reports until SIGTERM. Prints `pushed` once acknowledged.
 *
 *   node bench/proxy/callgrind/feedOnce.ts HOME STATE_DIR PORT UPSTREAM_PORT
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { dataPlanePaths } from "../../../src/dataplane/paths.ts";
import { fleetOrThrow, loadFleetFile } from "../../../src/spec/index.ts";
import { benchFleetYaml } from "../benchFleet.ts";
import { benchSnapshot } from "../benchSnapshot.ts";
import { FeedController } from "../feedController.ts";

const [home, stateDir, portText, upstreamText] = process.argv.slice(2) as [string, string, string, string];
const port = Number(portText);
const upstreamPort = Number(upstreamText);
const fleetFile = join(home, "fleet.yaml");
writeFileSync(fleetFile, benchFleetYaml(port, upstreamPort));
const service = fleetOrThrow(await loadFleetFile(fleetFile)).services[0]!;
const feedPath = dataPlanePaths(stateDir).feed;
let feed: FeedController | null = null;
while (feed === null) {
  feed = await FeedController.attach(feedPath).catch(() => null);
  if (feed === null) await new Promise((resolve) => setTimeout(resolve, 500));
}
const attached = feed;
await attached.push(
  benchSnapshot({
    service: service.name,
    port,
    upstreamPort,
    traffic: service.traffic,
    controller: { pid: process.pid, startedAt: attached.startedAt },
    issuedAt: Date.now(),
  }),
);
process.stdout.write("pushed\n");
process.on("SIGTERM", () => {
  attached.close();
  process.exit(0);
});
