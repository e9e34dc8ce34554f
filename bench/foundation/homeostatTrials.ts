/**
 * One fault injected into one instance of a Homeostat fleet, timed from the bench's side and from
 * the controller's own incident record.
 */

import type { InstanceStatus } from "../../src/server/statusView.ts";
import { waitFor } from "../../test/helpers/waitFor.ts";
import type { HomeostatUnderTest } from "./homeostat.ts";
import { answersReady } from "./httpCheck.ts";
import { identify, signalIfRunning, stillRunning } from "./processes.ts";

/** How long one trial may take before it is recorded as failed. */
const TRIAL_TIMEOUT_MS = 30_000;
/** A slot must be rested before it is chosen; it takes `resetAfter` (10 s by default) to get there. */
const VICTIM_TIMEOUT_MS = 60_000;

export type Fault = "SIGKILL" | "SIGSTOP";

/** Everything measured in one trial. Epoch-ms timestamps; `null` when not observed. */
export interface HomeostatTrial {
  trial: number;
  fault: Fault;
  service: string;
  instance: string;
  oldPid: number;
  newPid: number | null;
  ok: boolean;
  error?: string;
  /** When the bench sent the signal. */
  injectedAt: number;
  incidentId: number | null;
  incidentKind: string | null;
  /** The incident's detection time, by the controller's clock. */
  detectedAt: number | null;
  /** detectedAt − injectedAt: detection as seen from the fault. */
  detectedAfterMs: number | null;
  /** The incident's TTD: detectedAt − last good probe. */
  ttdMs: number | null;
  /** The incident's TTR: detectedAt → replacement ready. */
  ttrMs: number | null;
  /** The controller's `instance.started` event for the replacement. */
  replacementStartedAt: number | null;
  /** Bench: the old process is gone and the port answers `GET /ready` with 200. */
  appReadyAt: number | null;
  /** Bench: `/v1/status` shows the slot ready with a new pid. */
  statusReadyAt: number | null;
  /** statusReadyAt − injectedAt: the wall-clock "fault → replacement ready". */
  faultToReadyMs: number | null;
  /** appReadyAt − injectedAt: "fault → a new process answers /ready", as measured for the naive baseline. */
  faultToAppReadyMs: number | null;
}

function emptyTrial(trial: number, fault: Fault, victim: InstanceStatus, injectedAt: number): HomeostatTrial {
  return {
    trial,
    fault,
    service: victim.service,
    instance: victim.name,
    oldPid: victim.pid ?? -1,
    newPid: null,
    ok: false,
    injectedAt,
    incidentId: null,
    incidentKind: null,
    detectedAt: null,
    detectedAfterMs: null,
    ttdMs: null,
    ttrMs: null,
    replacementStartedAt: null,
    appReadyAt: null,
    statusReadyAt: null,
    faultToReadyMs: null,
    faultToAppReadyMs: null,
  };
}

/**
 * A random instance that is ready and rested: no open incident, no failure on record. Recovering
 * from a first failure is what is timed here; a slot hit again before `resetAfter` would add its
 * restart backoff (on purpose — that is crash-loop protection) and measure something else.
 */
async function pickVictim(homeostat: HomeostatUnderTest, total: number): Promise<InstanceStatus> {
  return await waitFor(
    async () => {
      const instances = (await homeostat.status()).services.flatMap((s) => s.instances);
      if (instances.length !== total || instances.some((i) => i.state !== "ready")) return null;
      const rested = instances.filter(
        (i) => i.pid !== null && i.consecutiveFailures === 0 && !i.crashLoop && i.openIncident === null,
      );
      return rested.length === 0 ? null : rested[Math.floor(Math.random() * rested.length)]!;
    },
    { timeoutMs: VICTIM_TIMEOUT_MS, intervalMs: 100, what: "a ready instance with no recent failure" },
  );
}

/**
 * Send `fault` to a random ready instance, then wait until the controller has replaced it, the
 * incident is mitigated and the whole fleet is ready again. A SIGSTOPped process is SIGKILLed
 * afterwards whatever happened, so nothing stays stopped.
 */
export async function homeostatTrial(
  homeostat: HomeostatUnderTest,
  options: { trial: number; fault: Fault; total: number },
): Promise<HomeostatTrial> {
  homeostat.assertRunning();
  const victim = await pickVictim(homeostat, options.total);
  const old = identify(victim.pid!);
  const lastIncidentId = Math.max(0, ...(await homeostat.incidents(20)).map((i) => i.id));
  const injectedAt = Date.now();
  process.kill(old.pid, options.fault);
  const result = emptyTrial(options.trial, options.fault, victim, injectedAt);
  try {
    const appReady = waitFor(
      async () => (!stillRunning(old) && (await answersReady(victim.port, 300)) ? Date.now() : null),
      { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 10, what: `a new process answering on ${victim.port}` },
    );
    const statusReady = waitFor(
      async () => {
        const now = Date.now();
        const instance = (await homeostat.status()).services
          .flatMap((s) => s.instances)
          .find((i) => i.name === victim.name);
        return instance?.state === "ready" && instance.pid !== null && instance.pid !== old.pid
          ? { at: now, pid: instance.pid }
          : null;
      },
      { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 20, what: `${victim.name} ready with a new pid` },
    );
    const [appReadyAt, ready] = await Promise.all([appReady, statusReady]);
    result.appReadyAt = appReadyAt;
    result.statusReadyAt = ready.at;
    result.newPid = ready.pid;
    result.faultToAppReadyMs = appReadyAt - injectedAt;
    result.faultToReadyMs = ready.at - injectedAt;

    const incident = await waitFor(
      async () =>
        (await homeostat.incidents(20)).find(
          (i) => i.id > lastIncidentId && i.instance === victim.name && i.mitigatedAt !== null,
        ),
      { timeoutMs: TRIAL_TIMEOUT_MS, intervalMs: 50, what: `a mitigated incident for ${victim.name}` },
    );
    result.incidentId = incident.id;
    result.incidentKind = incident.kind;
    result.detectedAt = incident.detectedAt;
    result.detectedAfterMs = incident.detectedAt - injectedAt;
    result.ttdMs = incident.ttdMs;
    result.ttrMs = incident.ttrMs;
    result.replacementStartedAt =
      homeostat.events.find(
        (e) => e.type === "instance.started" && e.instance === victim.name && e.at >= injectedAt,
      )?.at ?? null;

    await homeostat.waitAllReady(options.total, TRIAL_TIMEOUT_MS);
    result.ok = true;
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
  } finally {
    if (options.fault === "SIGSTOP") signalIfRunning(old, "SIGKILL");
  }
  return result;
}
