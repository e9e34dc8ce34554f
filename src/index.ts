/**
 * Homeostat's public API, for programs that embed it or build on its pieces. Only re-exports.
 */

export type { Action } from "./decide/actions.ts";
export { restartDelayMs } from "./decide/backoff.ts";
export type { Reason, ReasonCode } from "./decide/reasons.ts";
export { decide } from "./decide/reconcile.ts";
export type { ObservedInstance, Snapshot } from "./decide/snapshot.ts";
export type { Driver, ExitInfo, InstanceLaunch, RuntimeHandle, RuntimeStatus } from "./drivers/driver.ts";
export { LocalProcessDriver } from "./drivers/local/localProcessDriver.ts";
export { ERROR_CODES, type ErrorCode, HomeostatError } from "./errors.ts";
export type { HealthState, InstanceHealth, ProbeResult } from "./observe/health.ts";
export { runProbe } from "./observe/probeRunner.ts";
export { fleetJsonSchema, formatSpecError, loadFleetFile, parseFleet } from "./spec/index.ts";
export type { FleetSpec, ReleaseSpec, ServiceSpec } from "./spec/model.ts";
export {
  AdaptiveLimit,
  type AdaptiveLimitOptions,
} from "./traffic/policies/adaptiveLimit.ts";
export {
  AdmissionController,
  type AdmissionControllerOptions,
  type AdmissionStats,
  type ReleaseOutcome,
  serviceLimit,
} from "./traffic/policies/admissionController.ts";
export { type JitteredBackoffOptions, jitteredBackoff } from "./traffic/policies/backoff.ts";
export {
  RetryBudget,
  type RetryBudgetOptions,
  type RetryBudgetStats,
} from "./traffic/policies/retryBudget.ts";
export { onActionStarted, onFailure, onHealth } from "./verify/incidentRules.ts";
