/**
 * The Homeostat side of the failover bench: a real controller (`homeostat up`) running three
 * instances of the demo app behind the service's front `port`, with the e2e tests' demo fleet
 * and the default traffic settings.
 */

import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { InstanceStatus } from "../../src/server/statusView.ts";
import { fleetOrThrow, loadFleetFile } from "../../src/spec/index.ts";
import { demoFleetYaml, freePort, freePortRange } from "../../test/helpers/e2e.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import { HomeostatUnderTest } from "../foundation/homeostat.ts";
import { identify, type ProcessLedger, signalIfRunning } from "../foundation/processes.ts";
import type { ProbeTuning } from "./haproxyConfig.ts";
import { epochNow } from "./haproxyFleet.ts";

export const SERVICE = "api";
export const REPLICAS = 3;

export interface HomeostatFleet {
  homeostat: HomeostatUnderTest;
  port: number;
  fleetFile: string;
  fleetYaml: string;
  /** Its readiness probe, which HAProxy's tuned checks copy. */
  readiness: ProbeTuning;
}

/**
 * @param traffic YAML lines of the service's `traffic:` block (indented by 6 spaces), or none for
 *   the defaults
 */
export async function startHomeostatFleet(
  dir: string,
  ledger: ProcessLedger,
  traffic?: string,
): Promise<HomeostatFleet> {
  const port = await freePort();
  const basePort = await freePortRange(REPLICAS);
  const fleetYaml = demoFleetYaml({
    services: [
      { name: SERVICE, replicas: REPLICAS, basePort, port, ...(traffic === undefined ? {} : { traffic }) },
    ],
  });
  const fleetFile = join(dir, "fleet.yaml");
  writeFileSync(fleetFile, fleetYaml);
  const readiness = fleetOrThrow(await loadFleetFile(fleetFile)).services[0]!.probes.readiness;
  if (readiness === undefined) throw new Error("the demo fleet has no readiness probe");
  const { homeostat } = await HomeostatUnderTest.start({
    fleetFile,
    apiPort: await freePort(),
    stateDir: join(dir, "state"),
    total: REPLICAS,
    ledger,
  });
  return {
    homeostat,
    port,
    fleetFile,
    fleetYaml,
    readiness: {
      intervalMs: readiness.intervalMs,
      timeoutMs: readiness.timeoutMs,
      failureThreshold: readiness.failureThreshold,
      successThreshold: readiness.successThreshold,
    },
  };
}

/**
 * Wait until every instance is ready and `name` is rested (no failure on record, no open
 * incident): a slot killed again before `resetAfter` would add restart backoff, which is
 * crash-loop protection and not what is measured here.
 */
export async function readyVictim(homeostat: HomeostatUnderTest, name: string): Promise<InstanceStatus> {
  return await waitFor(
    async () => {
      const instances = (await homeostat.status()).services.flatMap((s) => s.instances);
      if (instances.length !== REPLICAS || instances.some((i) => i.state !== "ready")) return null;
      const victim = instances.find((i) => i.name === name);
      return victim?.pid != null && victim.consecutiveFailures === 0 && victim.openIncident === null
        ? victim
        : null;
    },
    { timeoutMs: 60_000, intervalMs: 100, what: `${name} ready and rested` },
  );
}

/** SIGKILL the victim's process if it is still the one identified; returns the epoch ms. */
export function killInstance(victim: InstanceStatus): () => number {
  const id = identify(victim.pid!);
  return () => {
    const at = epochNow();
    if (!signalIfRunning(id, "SIGKILL"))
      throw new Error(`${victim.name} (pid ${victim.pid}) was already gone`);
    return at;
  };
}

/** The controller's incident for `instance` after `since`: detection and mitigation, ms from `since`. */
export async function incidentAfter(
  homeostat: HomeostatUnderTest,
  instance: string,
  since: number,
): Promise<{ detectedMs: number | null; replacementReadyMs: number | null; incidentKind: string | null }> {
  const incident = await waitFor(
    async () =>
      (await homeostat.incidents(20)).find(
        (i) => i.instance === instance && i.detectedAt >= since - 1 && i.mitigatedAt !== null,
      ),
    { timeoutMs: 30_000, intervalMs: 50, what: `a mitigated incident for ${instance}` },
  );
  return {
    detectedMs: incident.detectedAt - since,
    replacementReadyMs: incident.mitigatedAt === null ? null : incident.mitigatedAt - since,
    incidentKind: incident.kind,
  };
}
