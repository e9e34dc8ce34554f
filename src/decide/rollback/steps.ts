import type { ServiceSpec } from "../../spec/model.ts";
import { durationMs } from "./display.ts";
import type { AppliedMigration } from "./types.ts";

/** Startup probes usually pass within a few rounds; one round is optimistic, the threshold far too pessimistic. */
const STARTUP_ROUNDS = 3;

/**
 * How long a rollback should take, from the service's own settings:
 *
 *   startup.initialDelay + startup.interval × 3           (startup probe, if any)
 * + readiness.initialDelay + readiness.interval × readiness.successThreshold   (if any)
 * + traffic.drainTimeout                                  (the old instances finish their requests)
 *
 * The new instances start together in the idle bank, so replicas do not multiply it. It is an
 * estimate of the usual case, not a bound: slow processes and failing probes take longer.
 */
export function expectedRollbackDurationMs(service: ServiceSpec): number {
  const { startup, readiness } = service.probes;
  const startupMs = startup === undefined ? 0 : startup.initialDelayMs + startup.intervalMs * STARTUP_ROUNDS;
  const readyMs =
    readiness === undefined
      ? 0
      : readiness.initialDelayMs + readiness.intervalMs * readiness.successThreshold;
  return startupMs + readyMs + service.traffic.drainTimeoutMs;
}

/** What carrying out the rollback from `from` to `to` does, in order, in words. */
export function rollbackSteps(
  service: ServiceSpec,
  from: string,
  to: string,
  downMigrations: readonly AppliedMigration[],
): string[] {
  const steps: string[] = [];
  if (downMigrations.length > 0) {
    const order = downMigrations.map(
      (applied) => `${applied.migration.datastore} ${applied.migration.to}→${applied.migration.from}`,
    );
    steps.push(
      `run the down-migrations yourself, in this order: ${order.join(", ")} (Homeostat does not run them)`,
    );
  }
  const instances = service.replicas === 1 ? "1 instance" : `${service.replicas} instances`;
  steps.push(`start ${instances} of ${to} in the idle bank, beside the ${from} instances`);
  steps.push(`wait for them to be ready (${readinessWords(service)})`);
  if (service.port !== undefined) steps.push(`move 100 % of the traffic on port ${service.port} to ${to}`);
  steps.push(
    `stop the ${from} instances (in-flight requests drain for up to ${durationMs(service.traffic.drainTimeoutMs)}, ` +
      `then SIGTERM, SIGKILL after ${durationMs(service.restart.stopGracePeriodMs)})`,
  );
  steps.push(`record ${from} as rolled back and ${to} as the running release`);
  return steps;
}

function readinessWords(service: ServiceSpec): string {
  const { startup, readiness } = service.probes;
  const probes = [startup && "startup", readiness && "readiness"].filter(Boolean);
  if (probes.length === 0) return "no probes: running counts as ready";
  const ms = expectedRollbackDurationMs(service) - service.traffic.drainTimeoutMs;
  return `${probes.join(" then ")} probe${probes.length > 1 ? "s" : ""}, about ${durationMs(ms)}`;
}
