/**
 * Everything that is wrong but not an incident, in one list: partial recoveries, broken security
 * invariants, drift, an N−1 shortfall and shared fate. Each source reports its own way; here they
 * become one line each, without saying the same thing twice.
 */

import { Section } from "../components/Section.tsx";
import type { Fleet } from "../live.ts";
import { invariantsOf, partialsOf, type StatusDoc } from "../model.ts";

/** One warning: what kind it is (the bold part) and what it says. */
interface Warning {
  kind: string;
  text: string;
}

/** The warnings the status, the shared-fate check and the release ledgers give now, in that order. */
function warningsOf(status: StatusDoc, fleet: Fleet): Warning[] {
  const warnings: Warning[] = [];
  const partials = partialsOf(status);
  for (const p of partials) {
    // The detail usually names the service already ("api: 2 of 3 instances ready").
    const service = p.service !== undefined && !p.detail.startsWith(`${p.service}:`) ? p.service : undefined;
    const where = [service, p.zone, p.instances?.join(", ")].filter(Boolean).join(" · ");
    warnings.push({ kind: `partial recovery: ${p.kind}`, text: `${where ? `${where}: ` : ""}${p.detail}` });
  }
  for (const s of status.services) {
    const inv = invariantsOf(status, s.name);
    if (inv?.verdict !== "broken") continue;
    for (const g of inv.broken) {
      const on = g.instances.length > 0 ? ` on ${g.instances.join(", ")}` : "";
      const more = g.details.length > 1 ? ` (and ${g.details.length - 1} more)` : "";
      warnings.push({
        kind: "security invariant broken",
        text: `${s.name}: ${g.invariant}${on}: ${g.details[0]}${more}`,
      });
    }
  }
  for (const s of status.services) {
    for (const w of s.warnings) {
      // Said already, with more detail, by a partial recovery of the same service.
      if (partials.some((p) => p.service === s.name && p.detail.includes(w))) continue;
      warnings.push({ kind: /drift/i.test(w) ? "drift" : s.name, text: w });
    }
  }
  if (!status.staticStability.ok && status.staticStability.warning !== undefined) {
    warnings.push({ kind: "N−1 static stability", text: status.staticStability.warning });
  }
  for (const f of fleet.check?.findings ?? []) {
    const text =
      typeof f.message === "string" ? f.message : typeof f.detail === "string" ? f.detail : JSON.stringify(f);
    warnings.push({ kind: `shared fate${typeof f.kind === "string" ? `: ${f.kind}` : ""}`, text });
  }
  for (const [service, doc] of Object.entries(fleet.releases)) {
    for (const r of doc.history) {
      if (/drift/i.test(r.status))
        warnings.push({ kind: "drift", text: `${service} ${r.version}: ${r.status}` });
    }
  }
  return warnings;
}

/** The warnings panel; says so when there are none, so an empty list is not mistaken for a gap. */
export function Warnings(props: { status: StatusDoc; fleet: Fleet }) {
  const warnings = warningsOf(props.status, props.fleet);
  return (
    <Section wide id="warnings" title="Warnings">
      {warnings.length === 0 ? (
        <p class="quiet">
          <span aria-hidden="true">✔ </span>No warnings: no partial recovery, drift, shared fate or N−1
          shortfall.
        </p>
      ) : (
        <ul class="warnings">
          {warnings.map((w) => (
            <li key={`${w.kind}:${w.text}`}>
              <span aria-hidden="true">⚠ </span>
              <strong>{w.kind}</strong>: {w.text}
            </li>
          ))}
        </ul>
      )}
    </Section>
  );
}
