/** The line above the panels: the fleet's state, ready instances, open incidents, the data plane. */

import { StateBadge } from "../components/StateBadge.tsx";
import { fleetRecovery, reasonsOf, type StatusDoc } from "../model.ts";

/** The fleet at a glance. */
export function Summary(props: { status: StatusDoc }) {
  const { status } = props;
  const fleetState = fleetRecovery(status);
  const instances = status.services.flatMap((s) => s.instances);
  const ready = instances.filter((i) => i.state === "ready").length;
  return (
    <section aria-label="Summary" class="summary wide">
      <p>
        Fleet <StateBadge state={fleetState} reasons={reasonsOf(status.recovery)} />
      </p>
      <p>
        <strong>{ready}</strong> of {instances.length} instances ready
      </p>
      <p>
        <strong>{status.openIncidents}</strong> open incident{status.openIncidents === 1 ? "" : "s"}
      </p>
      <p>
        Data plane{" "}
        {status.dataPlane === undefined ? (
          "none (no service has a port)"
        ) : status.dataPlane.connected === false ? (
          <span class="badge s-failing">
            <span aria-hidden="true">✖</span> disconnected
          </span>
        ) : (
          <span class="badge s-healthy">
            <span aria-hidden="true">●</span> connected
          </span>
        )}
      </p>
    </section>
  );
}
