/**
 * The fleet laid out as it runs: zones, their hosts and instances, whether the fleet survives
 * losing each zone, the zone's traffic share, and the failover and failback actions; the services
 * list below it.
 */

import type { Ask } from "../actions.ts";
import { Section } from "../components/Section.tsx";
import { StateBadge } from "../components/StateBadge.tsx";
import type { Fleet } from "../live.ts";
import {
  type FailoverZone,
  type Instance,
  instanceRecovery,
  reasonsOf,
  type StatusDoc,
  zoneRecovery,
} from "../model.ts";
import { Services } from "./Services.tsx";

/** The topology panel: every zone the instances or the failover controller name, sorted. */
export function Topology(props: { status: StatusDoc; fleet: Fleet; ask: Ask }) {
  const { status, fleet } = props;
  const instances = status.services.flatMap((s) => s.instances);
  const zones = [
    ...new Set([...instances.map((i) => i.zone), ...(fleet.failover?.zones.map((z) => z.zone) ?? [])]),
  ].sort();
  return (
    <Section wide id="topology" title="Topology">
      <div class="zones">
        {zones.map((zone) => {
          const inZone = instances.filter((i) => i.zone === zone);
          const hosts = [...new Set(inZone.map((i) => i.host))].sort();
          const fz = fleet.failover?.zones.find((z) => z.zone === zone);
          const zr = zoneRecovery(status, zone);
          const domain = status.domains.find((d) => d.zone === zone);
          return (
            <article class="zone" key={zone} aria-labelledby={`zone-${zone}`} data-zone={zone}>
              <h3 id={`zone-${zone}`}>
                {zone} {zr !== undefined && <StateBadge state={zr.state} reasons={zr.reasons ?? []} />}
              </h3>
              {fz !== undefined && <ZoneFacts zone={fz} />}
              {domain !== undefined && (
                <p class="small">
                  {domain.survivesLoss ? (
                    <>
                      <span aria-hidden="true">✔ </span>the fleet survives losing it (
                      {Math.round(domain.headroomRps)} req/s spare)
                    </>
                  ) : (
                    <>
                      <span aria-hidden="true">⚠ </span>losing it would overload the survivors (short{" "}
                      {Math.round(-domain.headroomRps)} req/s)
                    </>
                  )}
                </p>
              )}
              {hosts.map((host) => (
                <div class="host" key={host}>
                  <h4>{host}</h4>
                  <ul class="instances">
                    {inZone
                      .filter((i) => i.host === host)
                      .map((i) => (
                        <InstanceItem key={i.name} instance={i} />
                      ))}
                  </ul>
                </div>
              ))}
              {fz !== undefined && (
                <div class="actions">
                  <button
                    type="button"
                    onClick={() =>
                      props.ask({
                        title: `Fail over ${zone}`,
                        description: `Move traffic out of ${zone} step by step; survivors are kept under their ceiling (instances added first, then sheddable and default traffic shed, never critical).`,
                        method: "POST",
                        path: "/v1/failover",
                        body: { domain: zone },
                        reason: true,
                        forceField: "override",
                        confirm: "Fail over",
                      })
                    }
                  >
                    Fail over {zone}
                  </button>
                  <button
                    type="button"
                    class="secondary"
                    onClick={() =>
                      props.ask({
                        title: `Fail back ${zone}`,
                        description: `Bring traffic back to ${zone} gradually, through the failback hysteresis.`,
                        method: "POST",
                        path: "/v1/failback",
                        body: { domain: zone },
                        reason: true,
                        confirm: "Fail back",
                      })
                    }
                  >
                    Fail back {zone}
                  </button>
                </div>
              )}
            </article>
          );
        })}
      </div>
      <Services status={status} />
    </Section>
  );
}

/** A zone as the failover controller sees it: its traffic share, state and why. */
function ZoneFacts(props: { zone: FailoverZone }) {
  const z = props.zone;
  return (
    <p class="small" data-testid={`zone-facts-${z.zone}`}>
      traffic share <strong>{Math.round(z.share * 100)} %</strong> · {z.state} · {z.reason}
      {z.shift !== null && <span> · shift in progress</span>}
    </p>
  );
}

/** One instance: its recovery state, process facts, open incident and why it is as it is. */
function InstanceItem(props: { instance: Instance }) {
  const i = props.instance;
  const state = instanceRecovery(i);
  return (
    <li class="instance" data-instance={i.name} data-state={state}>
      <div class="instance-head">
        <strong>{i.name}</strong> <StateBadge state={state} reasons={reasonsOf(i.recovery)} />
      </div>
      <div class="small">
        {i.state} · {i.release ?? "no release"} · port {i.port}
        {i.pid !== null && <> · pid {i.pid}</>}
        {i.openIncident !== null && (
          <>
            {" "}
            · <a href={`#incident-${i.openIncident}`}>incident #{i.openIncident}</a>
          </>
        )}
      </div>
      <div class="small reason">{[i.reason, ...reasonsOf(i.recovery)].filter(Boolean).join("; ")}</div>
    </li>
  );
}
