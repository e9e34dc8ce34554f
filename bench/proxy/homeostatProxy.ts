/**
 * Homeostat's `ServiceProxy` alone in a Node process, in front of one upstream: the contender the
 * proxy bench measures. The traffic settings are the spec loader's defaults (a tiny fleet file is
 * loaded and `services[0].traffic` taken), except the ones named in `benchFleet.ts`.
 *
 *   node bench/proxy/homeostatProxy.ts --dir DIR --port PORT --upstream-port PORT
 *
 * Prints one line `{"listening":PORT}` once it accepts connections; stops on SIGTERM or SIGINT;
 * prints its event-loop delay on SIGUSR2 (loopDelay.ts).
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fleetOrThrow, loadFleetFile, type TrafficSpec } from "../../src/spec/index.ts";
import { FaultRegistry } from "../../src/traffic/faults.ts";
import { ServiceProxy } from "../../src/traffic/proxy/serviceProxy.ts";
import { TrafficStats } from "../../src/traffic/stats/index.ts";
import { benchFleetYaml } from "./benchFleet.ts";
import { reportLoopDelayOnSignal } from "./loopDelay.ts";

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      dir: { type: "string" },
      port: { type: "string" },
      "upstream-port": { type: "string" },
    },
    strict: true,
  });
  const port = Number(values.port);
  const upstreamPort = Number(values["upstream-port"]);
  if (!values.dir || !Number.isInteger(port) || !Number.isInteger(upstreamPort)) {
    throw new Error("usage: homeostatProxy.ts --dir DIR --port PORT --upstream-port PORT");
  }
  const file = join(values.dir, "fleet.yaml");
  writeFileSync(file, benchFleetYaml(port, upstreamPort));
  const service = fleetOrThrow(await loadFleetFile(file)).services[0]!;
  const traffic: TrafficSpec = service.traffic;

  const proxy = new ServiceProxy({
    service: service.name,
    port,
    traffic,
    stats: new TrafficStats(),
    faults: new FaultRegistry(),
  });
  await proxy.listen();
  proxy.setEndpoints([
    {
      instance: "upstream-0",
      service: service.name,
      release: "v1",
      zone: "zone-a",
      host: "host-a",
      address: "127.0.0.1",
      port: upstreamPort,
    },
  ]);
  reportLoopDelayOnSignal();
  process.stdout.write(`${JSON.stringify({ listening: proxy.port, traffic })}\n`);

  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    // Not a drain test: the bench has stopped its load before it stops the proxy.
    proxy.close().finally(() => process.exit(0));
    setTimeout(() => process.exit(0), 2_000).unref();
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `homeostatProxy: ${error instanceof Error ? (error.stack ?? error.message) : error}\n`,
  );
  process.exit(1);
});
