/**
 * The example fleet, copied into a scratch directory so the controller's state and the instances'
 * working directories stay out of the repository. Its releases name the demo app by a path
 * relative to the fleet file (`../app/server.ts`); the copy names it by its absolute path.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { isMap, isScalar, isSeq, parseDocument } from "yaml";
import { type FleetSpec, fleetOrThrow, loadFleetFile, PORT_BANKS } from "../../src/spec/index.ts";

/** Write a copy of `source` into `dir` with relative script paths in `args` made absolute. */
export async function copyFleet(source: string, dir: string): Promise<{ file: string; fleet: FleetSpec }> {
  const sourceDir = dirname(source);
  const doc = parseDocument(readFileSync(source, "utf8"));
  let rewritten = 0;
  const services = doc.get("services");
  if (!isMap(services)) throw new Error(`${source}: no services map`);
  for (const service of services.items) {
    const releases = isMap(service.value) ? service.value.get("releases") : undefined;
    if (!isMap(releases)) continue;
    for (const release of releases.items) {
      const args = isMap(release.value) ? release.value.get("args") : undefined;
      if (!isSeq(args)) continue;
      for (const arg of args.items) {
        if (!isScalar(arg) || typeof arg.value !== "string") continue;
        if (!arg.value.startsWith("./") && !arg.value.startsWith("../")) continue;
        arg.value = resolve(sourceDir, arg.value);
        rewritten++;
      }
    }
  }
  if (rewritten === 0) throw new Error(`${source}: no relative path in any release's args to rewrite`);
  const file = join(dir, "fleet.yaml");
  writeFileSync(file, doc.toString());
  const fleet = fleetOrThrow(await loadFleetFile(file));
  for (const service of fleet.services) {
    for (const release of Object.values(service.releases)) {
      const relative = release.args.find((a) => a.includes("/") && !isAbsolute(a));
      if (relative !== undefined)
        throw new Error(`${file}: ${service.name} ${release.version} still has ${relative}`);
    }
  }
  return { file, fleet };
}

/** Every fixed port the fleet binds: front ports and both banks of instance ports. */
export function fleetPorts(fleet: FleetSpec): number[] {
  return fleet.services.flatMap((s) => [
    ...(s.port === undefined ? [] : [s.port]),
    ...Array.from({ length: PORT_BANKS * s.replicas }, (_, i) => s.basePort + i),
  ]);
}

export async function portIsFree(port: number): Promise<boolean> {
  return await new Promise((done) => {
    const server = createServer();
    server.once("error", () => done(false));
    server.listen(port, "127.0.0.1", () => server.close(() => done(true)));
  });
}

/** The ports of `ports` that something listens on now. */
export async function busyPorts(ports: readonly number[]): Promise<number[]> {
  const busy: number[] = [];
  for (const port of ports) if (!(await portIsFree(port))) busy.push(port);
  return busy;
}
