import { checkResult } from "./checkResult.ts";
import type { RollbackContext } from "./context.ts";
import type { CheckResult, ReleaseHistoryEntry } from "./types.ts";
import { newestFirst, wasProven } from "./versions.ts";

export type TargetChoice =
  | { kind: "found"; target: ReleaseHistoryEntry }
  /** No release to go to. `to` is the requested version, or "" when none was asked for; `check` says why. */
  | { kind: "none"; to: string; check: CheckResult };

/**
 * The release to roll back to. With `to`: the newest record of that version. Without: the newest
 * proven release other than the running one; failing that, the newest other release (the evidence
 * check will then warn that it was never proven, or block if it failed here).
 *
 * A missing target is reported as a blocking evidence check (there is no record, so there is no
 * evidence), which keeps the plan's shape the same in every case.
 */
export function chooseTarget(context: RollbackContext, to: string | undefined): TargetChoice {
  const { service, facts } = context;
  const from = facts.current.version;
  const others = newestFirst(context.history.filter((entry) => entry.version !== from));
  if (to !== undefined) {
    if (to === from)
      return none(to, `${service.name} ${to} is what runs now: there is nothing to roll back to`);
    const found = others.find((entry) => entry.version === to);
    if (found !== undefined) return { kind: "found", target: found };
    if (service.releases[to] !== undefined) {
      return none(
        to,
        `${service.name} ${to} is declared in the fleet file but was never deployed: there is no record to roll back to (deploy it instead)`,
      );
    }
    const known = [...new Set(others.map((entry) => entry.version))];
    const listing =
      known.length === 0 ? "it has no other release" : `its other releases: ${known.join(", ")}`;
    return none(to, `${service.name} has no release ${to} in its history (${listing})`);
  }
  const target = others.find(wasProven) ?? others[0];
  if (target !== undefined) return { kind: "found", target };
  return none("", `${service.name} has no release to roll back to: ${from} is the only one in its history`);
}

function none(to: string, message: string): TargetChoice {
  const check = checkResult(
    "evidence",
    [{ severity: "blocking", finding: { field: "to", message } }],
    () => message,
  );
  return { kind: "none", to, check };
}
