/**
 * Typed reasons: every automatic decision carries one, and the same value is written to the
 * journal, the events and shown by the CLI and the API.
 */

export type ReasonCode =
  | "instance-missing"
  | "process-exited"
  | "liveness-failed"
  | "startup-failed"
  | "port-held"
  | "backoff"
  | "crash-loop"
  | "restart-policy"
  | "waiting-for-dependency"
  | "release-changed"
  | "rolling-one-at-a-time"
  | "scaled-down"
  | "service-removed"
  | "adopted"
  | "reaped"
  | "shutdown"
  | "health-changed"
  | "incident-opened"
  | "incident-updated"
  | "mitigated"
  | "stabilized"
  | "action-failed"
  | "operator"
  | "consecutive-failures"
  | "ejection-ended"
  | "left-membership"
  | "panic-send-to-all"
  | "panic-fail-closed"
  | "enough-healthy"
  | "canary-ready"
  | "canary-passed"
  | "promoted"
  | "soak-passed"
  | "instances-not-ready"
  | "canary-failed"
  | "step-deadline"
  | "soak-failed"
  | "soak-inconclusive"
  | "stable-ready"
  | "rollback-refused"
  | "rollback-warnings"
  | "domain-down"
  | "domain-degraded"
  | "failover-manual"
  | "failover-step"
  | "failover-step-held"
  | "failover-complete"
  | "failover-refused"
  | "failover-shedding"
  | "failover-scale-up"
  | "failover-capacity-ready"
  | "failback-waiting"
  | "failback-step"
  | "failback-relapsed"
  | "failback-complete"
  | "static-stability-lost"
  | "static-stability-restored"
  | "data-plane-started"
  | "data-plane-adopted"
  | "data-plane-exited"
  | "data-plane-restarted"
  | "data-plane-handover"
  | "data-plane-feed"
  | "data-plane-snapshot"
  | "notification-failed"
  | "notification-dropped"
  | "auth-not-enforced"
  | "policy-diverged"
  | "invariant-restored";

export interface Reason {
  code: ReasonCode;
  /** One sentence a person can read without the code: "exited with code 1 (3rd failure in 60s)". */
  message: string;
}

export function reason(code: ReasonCode, message: string): Reason {
  return { code, message };
}
