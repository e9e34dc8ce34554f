import type { SecretRef, SecuritySpec } from "../../spec/model.ts";
import { checkResult, type WeighedFinding } from "./checkResult.ts";
import { listSome } from "./display.ts";
import type { CheckResult } from "./types.ts";

/** What the security check looks at: the versions that must not be denied and the secrets it would run with. */
export interface SecuritySubject {
  service: string;
  /** Name used in messages. */
  label: string;
  /** Release versions whose code would run (for a roll-forward: the synthetic version and its artifact's). */
  versions: string[];
  secrets: SecretRef[];
}

/**
 * Known-bad facts a rollback must respect: a release on the deny list blocks (with the reason it
 * was denied), and so does any secret version on the revocation list. A rollback never restores a
 * revoked secret, however good the release looked before.
 */
export function securityCheck(subject: SecuritySubject, security: SecuritySpec): CheckResult {
  const findings: WeighedFinding[] = [];
  const versions = new Set(subject.versions);
  for (const denied of security.deniedReleases) {
    if (denied.service !== subject.service || !versions.has(denied.version)) continue;
    findings.push({
      severity: "blocking",
      finding: {
        field: "deniedReleases",
        actual: `${denied.service} ${denied.version}`,
        message: `${denied.service} ${denied.version} is on the deny list: ${denied.reason}`,
      },
    });
  }
  for (const secret of subject.secrets) {
    const revoked = security.revokedSecrets.find(
      (entry) => entry.name === secret.name && entry.version === secret.version,
    );
    if (revoked === undefined) continue;
    findings.push({
      severity: "blocking",
      finding: {
        field: `secrets.${secret.name}`,
        actual: secret.version,
        message: `${subject.label} uses secret ${secret.name} version ${secret.version}, which was revoked (${revoked.reason}): a rollback never restores a revoked secret`,
      },
    });
  }
  return checkResult("security", dedupe(findings), (severity, ordered) =>
    severity === "ok"
      ? `${subject.label} is not on the deny list and uses no revoked secret`
      : `${subject.label} must not run: ${listSome(
          ordered.map((item) => item.finding.message),
          3,
        )}`,
  );
}

/** The same entry in both the live and the declared list is one finding, not two. */
function dedupe(findings: WeighedFinding[]): WeighedFinding[] {
  const seen = new Set<string>();
  return findings.filter((item) => {
    const key = item.finding.message;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
