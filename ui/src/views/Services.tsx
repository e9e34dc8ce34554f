/**
 * The services list under the topology: each service's state, release and readiness, and its
 * security invariants (held, broken, or not checked yet).
 */

import { StateBadge } from "../components/StateBadge.tsx";
import { clock } from "../format.ts";
import {
  type InvariantSummary,
  invariantsOf,
  reasonsOf,
  type Service,
  type StatusDoc,
  serviceRecovery,
} from "../model.ts";

/** Every service of the fleet, one line each, under a "Services" heading. */
export function Services(props: { status: StatusDoc }) {
  const { status } = props;
  return (
    <>
      <h3>Services</h3>
      <ul class="services">
        {status.services.map((s) => (
          <ServiceLine key={s.name} service={s} invariants={invariantsOf(status, s.name)} />
        ))}
      </ul>
    </>
  );
}

/** One service: state, release, readiness, releases still running, invariants. */
function ServiceLine(props: { service: Service; invariants: InvariantSummary | undefined }) {
  const s = props.service;
  return (
    <li data-service={s.name}>
      <strong>{s.name}</strong> <StateBadge state={serviceRecovery(s)} reasons={reasonsOf(s.recovery)} />{" "}
      release <code>{s.release}</code> · {s.ready}/{s.replicas} ready
      {s.runningReleases.length > 1 && <> · running {s.runningReleases.join(", ")}</>}
      {props.invariants !== undefined && <InvariantsLine summary={props.invariants} />}
    </li>
  );
}

/** A service's security invariants: held, broken (which, on which instances), or not yet checked. */
function InvariantsLine(props: { summary: InvariantSummary }) {
  const x = props.summary;
  const checked =
    x.verdict !== "none" && x.lastCheckedAt !== null
      ? `last probe round ${clock(x.lastCheckedAt)}`
      : undefined;
  if (x.verdict === "broken") {
    return (
      <div class="invariants broken" data-invariants="broken">
        {x.broken.map((g) => (
          <p key={g.invariant} data-invariant={g.invariant} title={g.details.join("; ")}>
            <span class="badge s-failing">
              <span aria-hidden="true">✖</span> invariant broken
            </span>{" "}
            <code>{g.invariant}</code>
            {g.instances.length > 0 && <> on {g.instances.join(", ")}</>} · since {clock(g.since)}
            <span class="small reason"> {g.details[0]}</span>
          </p>
        ))}
      </div>
    );
  }
  const look =
    x.verdict === "held"
      ? { icon: "✔", text: "security invariants hold", cls: "s-verified" }
      : x.verdict === "unchecked"
        ? { icon: "…", text: "security invariants not checked yet (not verified)", cls: "s-degraded" }
        : { icon: "–", text: "no security invariants declared", cls: "" };
  return (
    <div class="invariants small" data-invariants={x.verdict} title={checked}>
      <span class={look.cls === "" ? "quiet" : `badge ${look.cls}`}>
        <span aria-hidden="true">{look.icon}</span> {look.text}
      </span>
    </div>
  );
}
