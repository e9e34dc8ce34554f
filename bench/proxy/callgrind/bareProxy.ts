/**
 * A bare `ServiceProxy` in a Node process, in front of one upstream, with the code of any checkout
 * (`--root`): what `bench/proxy/homeostatProxy.ts` was until 9a2ea64, so that an old commit's
 * request path and today's can be counted alike (count.sh). Traffic settings: the bench fleet's
 * (benchFleet.ts), plus `--extra`, one more YAML line under `traffic:` (e.g. to turn hedging off).
 *
 *   node bench/proxy/callgrind/bareProxy.ts --root DIR --dir DIR --port PORT --upstream-port PORT [--extra YAML]
 *
 * Prints one line `{"listening":PORT,...}` once it accepts connections; stops on SIGTERM.
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";
import { TRAFFIC_OVERRIDES } from "../benchFleet.ts";

const { values } = parseArgs({
  options: {
    root: { type: "string" },
    dir: { type: "string" },
    port: { type: "string" },
    "upstream-port": { type: "string" },
    extra: { type: "string" },
  },
  strict: true,
});
const port = Number(values.port);
const upstreamPort = Number(values["upstream-port"]);
if (!values.root || !values.dir || !Number.isInteger(port) || !Number.isInteger(upstreamPort)) {
  throw new Error("usage: bareProxy.ts --root DIR --dir DIR --port PORT --upstream-port PORT [--extra YAML]");
}
const root = values.root;
// The checkout's own modules, typed as this checkout's (the parts used here are alike since 424e531).
const load = <T>(path: string): Promise<T> => import(pathToFileURL(join(root, path)).href);
const { fleetOrThrow, loadFleetFile } =
  await load<typeof import("../../../src/spec/index.ts")>("src/spec/index.ts");
const { FaultRegistry } =
  await load<typeof import("../../../src/traffic/faults.ts")>("src/traffic/faults.ts");
const { ServiceProxy } = await load<typeof import("../../../src/traffic/proxy/serviceProxy.ts")>(
  "src/traffic/proxy/serviceProxy.ts",
);
const { TrafficStats } = await load<typeof import("../../../src/traffic/stats/index.ts")>(
  "src/traffic/stats/index.ts",
);

const file = join(values.dir, "fleet.yaml");
const extra = values.extra === undefined ? "" : `      ${values.extra}\n`;
writeFileSync(
  file,
  `version: 1
name: proxy-bench
services:
  bench:
    replicas: 1
    basePort: ${upstreamPort}
    port: ${port}
    placement: { zones: [zone-a] }
    traffic:
      ${TRAFFIC_OVERRIDES}
${extra}    release: v1
    releases:
      v1:
        command: "true"
`,
);
const service = fleetOrThrow(await loadFleetFile(file)).services[0]!;
const proxy = new ServiceProxy({
  service: service.name,
  port,
  traffic: service.traffic,
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
// Null on a checkout without them (before bee7dfd).
const hedging = (service.traffic as Partial<typeof service.traffic>).hedging ?? null;
const stallDetection = (service.traffic as Partial<typeof service.traffic>).stallDetection ?? null;
process.stdout.write(`${JSON.stringify({ listening: port, hedging, stallDetection })}\n`);
process.on("SIGTERM", () => {
  proxy.close().finally(() => process.exit(0));
  setTimeout(() => process.exit(0), 2_000).unref();
});
