/**
 * Convergence: did an instance start with what its service should run now? The controller
 * records at each launch what the process was started with (release version, a hash of the
 * release's launch configuration, the secret versions it references). A fleet file edited under
 * the same version key, or an instance adopted from a controller that ran an older file, leaves
 * a process on an old config while its version key still matches: only these launch facts tell.
 * Pure: release specs and recorded facts in, differences out.
 */

import { createHash } from "node:crypto";
import type { ReleaseSpec } from "../spec/model.ts";

/** What an instance was started with. */
export interface LaunchFacts {
  release: string;
  /** {@link configHashOf} of the release as launched. */
  configHash: string;
  /** Secret name → version, as the release referenced them at launch. */
  secretVersions: Record<string, string>;
}

/** One way an instance differs from what its service should run. */
export type Drift =
  | { kind: "release"; launched: string; desired: string }
  | { kind: "config"; release: string; launched: string; desired: string }
  | { kind: "secrets"; changed: { name: string; launched: string | null; desired: string | null }[] }
  /** Started before launch facts were recorded (an older Homeostat): nothing proves it converged. */
  | { kind: "unknown" };

/**
 * Hash of what a release's processes are launched with: command, args (as templates, so every
 * instance of a release has the same hash), env, config and working directory. Keys are sorted,
 * so the hash does not depend on the order they were written in the fleet file.
 */
export function configHashOf(release: ReleaseSpec): string {
  const launched = {
    command: release.command,
    args: release.args,
    env: release.env,
    config: release.config ?? null,
    cwd: release.cwd,
  };
  return createHash("sha256").update(stableJson(launched)).digest("hex").slice(0, 16);
}

/** Secret name → version for the secrets a release references. */
export function secretVersionsOf(release: ReleaseSpec): Record<string, string> {
  const versions: Record<string, string> = {};
  for (const s of [...release.secrets].sort((a, b) => a.name.localeCompare(b.name)))
    versions[s.name] = s.version;
  return versions;
}

/** The launch facts of `release` as the fleet spec has it now. */
export function launchFactsOf(release: ReleaseSpec): LaunchFacts {
  return {
    release: release.version,
    configHash: configHashOf(release),
    secretVersions: secretVersionsOf(release),
  };
}

/**
 * How `launched` differs from `desired`; empty when the instance converged. A different release
 * is reported alone: the config and secrets of another release differ as a matter of course.
 * `launched` null: facts were never recorded for this process.
 */
export function driftOf(
  launched: {
    release: string;
    configHash: string | null;
    secretVersions: Record<string, string> | null;
  } | null,
  desired: LaunchFacts,
): Drift[] {
  if (launched === null) return [{ kind: "unknown" }];
  if (launched.release !== desired.release) {
    return [{ kind: "release", launched: launched.release, desired: desired.release }];
  }
  if (launched.configHash === null || launched.secretVersions === null) return [{ kind: "unknown" }];
  const drift: Drift[] = [];
  if (launched.configHash !== desired.configHash) {
    drift.push({
      kind: "config",
      release: launched.release,
      launched: launched.configHash,
      desired: desired.configHash,
    });
  }
  const names = [
    ...new Set([...Object.keys(launched.secretVersions), ...Object.keys(desired.secretVersions)]),
  ].sort();
  const changed = names
    .map((name) => ({
      name,
      launched: launched.secretVersions?.[name] ?? null,
      desired: desired.secretVersions[name] ?? null,
    }))
    .filter((c) => c.launched !== c.desired);
  if (changed.length > 0) drift.push({ kind: "secrets", changed });
  return drift;
}

/** One sentence per drift: "on an old config of v1 (launched 3f2a…, desired 9c41…)". */
export function describeDrift(drift: Drift): string {
  switch (drift.kind) {
    case "release":
      return `runs ${drift.launched}, should run ${drift.desired}`;
    case "config":
      return `on an old config of ${drift.release} (launched with ${drift.launched}, the fleet file now has ${drift.desired})`;
    case "secrets":
      return `on old secret versions (${drift.changed
        .map((c) => `${c.name} ${c.launched ?? "none"} → ${c.desired ?? "none"}`)
        .join(", ")})`;
    case "unknown":
      return "launch facts not recorded (started by an older controller): convergence unknown";
  }
}

/** JSON with object keys sorted at every level. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value as Record<string, unknown>)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
