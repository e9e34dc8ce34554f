/**
 * Rollback safety: the inputs (release history and live facts) and the plan (checks, decision,
 * alternative). Pure data; `planRollback` in this folder computes the plan.
 */

import type { MigrationSpec, ReleaseSpec, SecuritySpec } from "../../spec/model.ts";

/** What proved a release good: it served all traffic within its SLO for the soak window. */
export interface ProofEvidence {
  windowMs: number;
  requests: number;
  errorRate: number;
  p99Ms: number | null;
  /** Epoch ms when the proof completed. */
  at: number;
}

export type ReleaseStatus = "deploying" | "active" | "proven" | "failed" | "rolled-back" | "superseded";

/** One release of one service as it was deployed: the full record, not just the artifact. */
export interface ReleaseHistoryEntry {
  service: string;
  version: string;
  spec: ReleaseSpec;
  contentHash: string;
  status: ReleaseStatus;
  deployedAt: number;
  provenAt: number | null;
  evidence: ProofEvidence | null;
}

export interface AppliedMigration {
  service: string;
  version: string;
  migration: MigrationSpec;
  at: number;
}

/** The world as it is now, which a rollback cannot change. */
export interface LiveFacts {
  now: number;
  /** The record of what runs now for the service. */
  current: ReleaseHistoryEntry;
  /** Live schema version of each datastore. */
  schemas: Record<string, number>;
  /** The API version each service serves now (its running release's `provides.api`). */
  servedApis: Record<string, string | undefined>;
  /** Services whose running release requires an API of this service: `requires.apis[service]`. */
  dependents: { service: string; version: string; requires: string }[];
  /** Every migration applied so far, oldest first. */
  appliedMigrations: AppliedMigration[];
  security: SecuritySpec;
}

export type CheckName = "evidence" | "drift" | "compatibility" | "migrations" | "security";

export interface CheckResult {
  name: CheckName;
  ok: boolean;
  /** `warning`: the rollback may go ahead but someone should know; `blocking`: it must not. */
  severity: "ok" | "warning" | "blocking";
  /** One sentence a person can act on. */
  detail: string;
  /** Machine-readable specifics (drifted fields, failed requirements, migrations, …). */
  findings: { field?: string; expected?: string; actual?: string; message: string }[];
}

export type RollbackDecision = "rollback" | "rollback-with-warnings" | "refuse";

export interface RollbackAlternative {
  kind: "older-proven" | "roll-forward";
  /** The release to go to; for roll-forward, the artifact of `baseVersion` with today's config. */
  version: string;
  baseVersion: string;
  description: string;
  checks: CheckResult[];
}

export interface RollbackPlan {
  service: string;
  from: string;
  to: string;
  decision: RollbackDecision;
  checks: CheckResult[];
  /** Present when the decision is `refuse`. */
  alternative?: RollbackAlternative;
  /** What carrying it out will do, in order. */
  steps: string[];
  expectedDurationMs: number;
}
