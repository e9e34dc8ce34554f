import type { ReleaseSpec } from "../../spec/model.ts";
import { checkResult } from "./checkResult.ts";
import { compatibilityCheck } from "./compatibilityCheck.ts";
import type { RollbackContext } from "./context.ts";
import { isoTime } from "./display.ts";
import { driftCheck } from "./driftCheck.ts";
import { evidenceCheck } from "./evidenceCheck.ts";
import { migrationCheck } from "./migrationCheck.ts";
import { checkTarget } from "./runChecks.ts";
import { securityCheck } from "./securityCheck.ts";
import type { CheckResult, ReleaseHistoryEntry, RollbackAlternative } from "./types.ts";
import { newestFirst, wasProven } from "./versions.ts";

/**
 * What to do instead of a refused rollback to `target` (absent when the requested target does not
 * exist). First choice: the newest proven release, other than the running one and the target,
 * whose own checks have no blocking result — it may be older or newer than the target. Otherwise
 * roll forward: the code of the newest proven release (or of the target) with today's config. The
 * roll-forward is returned even when it is not safe either, with its failing checks, so the
 * operator sees why; its description says so. `undefined` only when there is no release to build
 * either from.
 */
export function findAlternative(
  context: RollbackContext,
  target: ReleaseHistoryEntry | undefined,
): RollbackAlternative | undefined {
  const current = context.facts.current;
  const proven = provenOthers(context).filter((entry) => entry.version !== target?.version);
  for (const candidate of proven) {
    const checks = checkTarget(context, candidate);
    if (checks.every((check) => check.severity !== "blocking")) {
      return {
        kind: "older-proven",
        version: candidate.version,
        baseVersion: candidate.version,
        description: olderProvenDescription(candidate, target, checks),
        checks,
      };
    }
  }
  const base = provenOthers(context)[0] ?? target;
  if (base === undefined) return undefined;
  return rollForward(context, base, current);
}

/** Proven releases other than the running one, newest first, one record per version. */
function provenOthers(context: RollbackContext): ReleaseHistoryEntry[] {
  const seen = new Set<string>([context.facts.current.version]);
  const result: ReleaseHistoryEntry[] = [];
  for (const entry of newestFirst(context.history)) {
    if (seen.has(entry.version)) continue;
    seen.add(entry.version);
    if (wasProven(entry)) result.push(entry);
  }
  return result;
}

function olderProvenDescription(
  candidate: ReleaseHistoryEntry,
  target: ReleaseHistoryEntry | undefined,
  checks: CheckResult[],
): string {
  const when = candidate.provenAt === null ? "" : ` (proven at ${isoTime(candidate.provenAt)})`;
  let relation = "";
  if (target !== undefined) {
    relation =
      candidate.deployedAt < target.deployedAt
        ? `, older than ${target.version}`
        : `, newer than ${target.version}`;
  }
  const warnings = checks.filter((check) => check.severity === "warning").map((check) => check.name);
  const caveat =
    warnings.length === 0
      ? "; every check passes"
      : `; no check blocks it, but mind the warnings (${warnings.join(", ")})`;
  return `go to ${candidate.version} instead: the newest other proven release${when}${relation}${caveat}`;
}

/** The version of a roll-forward release: the artifact's version, tagged with the config it carries. */
export function rollForwardVersion(baseVersion: string, currentVersion: string): string {
  return `${baseVersion}+config-${currentVersion}`;
}

/**
 * A new release made of `base`'s artifact (command, args, working directory, and so what it
 * requires and provides) and today's env, config and secrets from `current`. It applies no
 * migrations: its code's migrations ran when `base` was deployed.
 */
export function rollForwardRelease(base: ReleaseSpec, current: ReleaseSpec): ReleaseSpec {
  return {
    version: rollForwardVersion(base.version, current.version),
    command: base.command,
    args: [...base.args],
    cwd: base.cwd,
    env: { ...current.env },
    config: structuredClone(current.config),
    secrets: current.secrets.map((secret) => ({ ...secret })),
    requires: { schemas: { ...base.requires.schemas }, apis: { ...base.requires.apis } },
    provides: { ...base.provides },
    migrations: [],
  };
}

function rollForward(
  context: RollbackContext,
  base: ReleaseHistoryEntry,
  current: ReleaseHistoryEntry,
): RollbackAlternative {
  const spec = rollForwardRelease(base.spec, current.spec);
  const synthetic: ReleaseHistoryEntry = {
    service: context.service.name,
    version: spec.version,
    spec,
    contentHash: "",
    status: "deploying",
    deployedAt: context.facts.now,
    provenAt: null,
    evidence: null,
  };
  const checks = [
    rollForwardEvidence(spec.version, base, current),
    driftCheck(synthetic, current, context.facts),
    compatibilityCheck(context, spec, spec.version),
    // The code is base's: the schemas must suit what base's code was deployed against.
    migrationCheck(context, base),
    securityCheck(
      {
        service: context.service.name,
        label: spec.version,
        versions: [spec.version, base.version],
        secrets: spec.secrets,
      },
      context.security,
    ),
  ];
  return {
    kind: "roll-forward",
    version: spec.version,
    baseVersion: base.version,
    description: rollForwardDescription(spec, base, current, checks),
    checks,
  };
}

/** Never proven as a whole; blocking if its code already failed here. */
function rollForwardEvidence(
  version: string,
  base: ReleaseHistoryEntry,
  current: ReleaseHistoryEntry,
): CheckResult {
  const baseEvidence = evidenceCheck(base);
  const severity = baseEvidence.severity === "blocking" ? "blocking" : "warning";
  const message = `${version} is a new combination, never proven as a whole: its code is ${base.version}'s (${baseEvidence.detail}), its env, config and secrets are ${current.version}'s`;
  return checkResult(
    "evidence",
    [{ severity, finding: { field: "status", expected: "proven", actual: "never deployed", message } }],
    () => message,
  );
}

function rollForwardDescription(
  spec: ReleaseSpec,
  base: ReleaseHistoryEntry,
  current: ReleaseHistoryEntry,
  checks: CheckResult[],
): string {
  const envCount = Object.keys(spec.env).length;
  const secrets =
    spec.secrets.length === 0
      ? "no secrets"
      : `secrets (${spec.secrets.map((secret) => `${secret.name}@${secret.version}`).join(", ")})`;
  const what =
    `roll forward instead: deploy ${spec.version}, a new release with the code of ${base.version} ` +
    `(its command, args and working directory) and today's env (${envCount} variable(s)), config and ${secrets} ` +
    `from ${current.version}`;
  const blocking = checks.filter((check) => check.severity === "blocking");
  if (blocking.length === 0) return `${what}; nothing in today's config goes back`;
  const why = blocking.map((check) => `${check.name}: ${check.detail}`).join("; ");
  return `${what}. It is not safe either (${why}). Shown so you can see why; the way out is a new release that fits the world as it is`;
}
